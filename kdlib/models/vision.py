"""Small CNNs for 28x28 (grey) and 32x32 (RGB) images, in teacher and student sizes.

Every classifier in kdlib exposes ``embed(x)`` (the penultimate representation) and ``head`` (the final
``nn.Linear``), so methods that read a teacher's embedding space (e.g. LELP) work on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class CNNConfig:
    """Architecture of :class:`SmallCNN`: conv blocks of ``widths`` channels (each conv-BN-ReLU-maxpool),
    global average pooling, a ``embed_dim`` fully connected layer, and the linear head."""

    in_channels: int
    num_classes: int
    widths: tuple[int, ...] = (32, 64, 128)
    embed_dim: int = 256
    dropout: float = 0.0


TEACHER_CNN = {"widths": (32, 64, 128), "embed_dim": 256}
STUDENT_CNN = {"widths": (8, 16), "embed_dim": 32}


class SmallCNN(nn.Module):
    """conv blocks -> global average pool -> FC embedding -> linear head."""

    memory_format = torch.channels_last  # the layout the engine converts batches to: 2.7x faster on this CPU (batch 64, 32/64/128)

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        if not config.widths or min(config.widths) < 1 or config.embed_dim < 1 or config.num_classes < 2:
            raise ValueError(f"invalid CNN config {config}")
        self.config = config
        layers: list[nn.Module] = []
        channels = config.in_channels
        for width in config.widths:
            # Pooling before the ReLU: max and ReLU commute exactly (both monotone), so outputs and gradients equal those
            # of conv -> BN -> ReLU -> pool, while the ReLU passes touch a quarter of the activations (the profile of
            # benchmarks/training_step.py shows them). Parameter indices (conv 4i, BN 4i + 1) are unchanged.
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.MaxPool2d(2), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embedding = nn.Sequential(nn.Linear(channels, config.embed_dim), nn.ReLU(), nn.Dropout(config.dropout))
        self.head = nn.Linear(config.embed_dim, config.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images (N, {self.config.in_channels}, H, W), got shape {tuple(x.shape)}")
        return self.embedding(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def images_to_tensor(images, mean: float | tuple[float, ...] | None = None, std: float | tuple[float, ...] | None = None) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> float tensor (N, C, H, W), scaled to [0, 1] then standardised."""
    x = torch.tensor(np.asarray(images))
    if x.dtype != torch.uint8 or x.ndim not in (3, 4):
        raise ValueError(f"expected uint8 images of shape (N, H, W) or (N, H, W, C), got {x.dtype} {tuple(x.shape)}")
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(255.0)
    if mean is not None and std is not None:
        m = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        s = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        x = (x - m) / s
    return x.contiguous()


def random_flip_crop(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Standard CIFAR augmentation on a batch: random horizontal flip and random crop after zero padding."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy.view(-1, 1) + torch.arange(h).view(1, -1))  # (n, h)
    cols = (dx.view(-1, 1) + torch.arange(w).view(1, -1))  # (n, w)
    batch = torch.arange(n).view(-1, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2).contiguous()


def mixup_cutmix(x: torch.Tensor, targets: torch.Tensor, generator: torch.Generator, mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0,
                 switch_prob: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """timm-style batch mixing: with probability ``switch_prob`` CutMix, else Mixup; each example is mixed with the
    batch in reverse order. Returns the mixed images and the mixed soft targets (N, C), weighted by the pixel share.

    (torchvision's v2 ``MixUp`` / ``CutMix`` do the same, but torchvision cannot be installed beside the pinned CPU
    build of torch here.) All randomness comes from ``generator``.
    """
    if targets.ndim != 2 or len(targets) != len(x):
        raise ValueError(f"targets must be soft or one-hot (N, C) for N = {len(x)}, got shape {tuple(targets.shape)}")
    if mixup_alpha <= 0 or cutmix_alpha <= 0 or not 0 <= switch_prob <= 1:
        raise ValueError(f"need positive alphas and a switch probability in [0, 1], got {mixup_alpha}, {cutmix_alpha}, {switch_prob}")
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    partner_x, partner_t = x.flip(0), targets.flip(0)
    if rng.random() < switch_prob:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        h, w = x.shape[-2:]
        cut_h, cut_w = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = x.clone()
        mixed[..., top:bottom, left:right] = partner_x[..., top:bottom, left:right]
        lam = 1 - (bottom - top) * (right - left) / (h * w)
    else:
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        mixed = lam * x + (1 - lam) * partner_x
    return mixed, lam * targets + (1 - lam) * partner_t


@dataclass(frozen=True)
class FlipCrop:
    """Batch transform for :func:`kdlib.train.fit`: random horizontal flip and padded random crop."""

    padding: int = 4

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return random_flip_crop(x, generator, self.padding), labels


@dataclass(frozen=True)
class MixupCutmix:
    """Batch transform for :func:`kdlib.train.fit`: Mixup or CutMix (:func:`mixup_cutmix`); labels become soft (N, C)."""

    num_classes: int
    mixup_alpha: float = 0.2
    cutmix_alpha: float = 1.0
    switch_prob: float = 0.5

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if labels.ndim == 1:
            if (labels < 0).any():
                raise ValueError("Mixup / CutMix needs a label for every example (found -1)")
            labels = nn.functional.one_hot(labels, self.num_classes).float()
        return mixup_cutmix(x, labels, generator, self.mixup_alpha, self.cutmix_alpha, self.switch_prob)
