"""M copies of :class:`~kdlib.models.vision.SmallCNN` trained side by side as one network with grouped convolutions.

Student m owns channel block m of every layer: the first convolution maps the shared input to M blocks, later
convolutions use ``groups=M`` (no mixing between blocks), BatchNorm is per channel (so per student), and the fully
connected layers are batched matrix products. One forward pass computes all M students on the same batch, so
methods compared on the same augmented batches (and the same initial weights) cost about one wide network.
"""

from __future__ import annotations

import torch
from torch import nn

from kdlib.models.vision import CNNConfig, SmallCNN


class StackedCNN(nn.Module):
    """``forward(x) -> (M, B, C)``: the logits of M SmallCNN students of one ``config``."""

    def __init__(self, config: CNNConfig, count: int, seed: int, shared_init: bool = True) -> None:
        super().__init__()
        if count < 1:
            raise ValueError(f"need at least one student, got {count}")
        if config.dropout:
            raise ValueError("the stacked CNN has no dropout")
        self.config, self.count = config, count
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        students = [SmallCNN(config)] * count if shared_init else [SmallCNN(config) for _ in range(count)]
        torch.random.set_rng_state(generator_state)
        layers: list[nn.Module] = []
        channels = config.in_channels
        for index, width in enumerate(config.widths):
            conv = nn.Conv2d(channels * (count if index else 1), width * count, 3, padding=1, bias=False, groups=count if index else 1)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([s.features[4 * index].weight for s in students]))
            layers += [conv, nn.BatchNorm2d(width * count), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        stack = lambda tensors: nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))  # noqa: E731
        self.w_embed = stack([s.embedding[0].weight.T for s in students])  # (M, W, E)
        self.b_embed = stack([s.embedding[0].bias for s in students])  # (M, E)
        self.w_head = stack([s.head.weight.T for s in students])  # (M, E, C)
        self.b_head = stack([s.head.bias for s in students])  # (M, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images (N, {self.config.in_channels}, H, W), got shape {tuple(x.shape)}")
        pooled = self.features(x).view(len(x), self.count, -1).transpose(0, 1)  # (M, B, W)
        embedded = torch.relu(torch.baddbmm(self.b_embed[:, None], pooled, self.w_embed))
        return torch.baddbmm(self.b_head[:, None], embedded, self.w_head)

    def student(self, index: int) -> SmallCNN:
        """Student ``index`` as a standalone SmallCNN (weights and BatchNorm statistics copied)."""
        model = SmallCNN(self.config)
        with torch.no_grad():
            for layer, width in enumerate(self.config.widths):
                conv, norm = self.features[4 * layer], self.features[4 * layer + 1]
                block = slice(index * width, (index + 1) * width)
                model.features[4 * layer].weight.copy_(conv.weight[block])
                target = model.features[4 * layer + 1]
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(target, name).copy_(getattr(norm, name)[block])
                target.num_batches_tracked.copy_(norm.num_batches_tracked)
            model.embedding[0].weight.copy_(self.w_embed[index].T)
            model.embedding[0].bias.copy_(self.b_embed[index])
            model.head.weight.copy_(self.w_head[index].T)
            model.head.bias.copy_(self.b_head[index])
        return model.train(self.training)
