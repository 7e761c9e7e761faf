"""A MobileNetV2-like layer-wise CNN space on Fashion-MNIST, evaluated on the fly by short proxy training.

Network: a 3x3 stride-2 stem, then L inverted-residual (MBConv) blocks with fixed widths and strides, global
average pooling and a linear head. Each block is searched: expansion e (1 or 3) x depthwise kernel k (3 or 5), the
per-layer choices of MobileNet search spaces. MBConv(e, k): 1x1 expand to e·c_in (absent when e = 1) -> BN-ReLU6 ->
k x k depthwise with the block's stride -> BN-ReLU6 -> 1x1 project -> BN, plus the input when the shape is unchanged.
Cost: MACs per 28x28 image, counted from the layer list (:mod:`kdlib.nas.cost`).

Evaluation (the proxy): train on a stratified subset of Fashion-MNIST's training split for a few epochs (AdamW,
cosine schedule, one fixed seed), reward = accuracy on a disjoint validation subset of the training split, report =
accuracy on the official test split (never used for selection). Each architecture's result is cached by content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from kdlib.cache import Cache
from kdlib.data import data_version, load, semi_supervised_split
from kdlib.models.vision import images_to_tensor
from kdlib.nas import cost
from kdlib.nas.cost import Conv
from kdlib.nas.space import Arch, Evaluation, Layer, SearchSpace
from kdlib.profiles import pick
from kdlib.distill import get_objective
from kdlib.train import TrainConfig, TrainSet, evaluate, fit, set_seed, torch_threads

PROXY_VERSION = 1
DATASET = "fashion_mnist"
# The proxy networks are tiny: one thread trains them as fast as two on an idle 2-core machine, and 5-10x faster
# when another job shares the cores (measured on the full space: 4-8 s against 26-117 s per architecture).
PROXY_THREADS = 1
OPTIONS = {"e1_k3": (1, 3), "e1_k5": (1, 5), "e3_k3": (3, 3), "e3_k5": (3, 5)}  # name -> (expansion, kernel)


@dataclass(frozen=True)
class Block:
    """One MBConv block's shape."""

    c_in: int
    c_out: int
    expansion: int
    kernel: int
    stride: int
    side_in: int
    side_out: int


@dataclass(frozen=True)
class CNNSpaceSpec:
    """The fixed skeleton: stem width, each block's output width and stride, and the options of every block."""

    stem: int = 16
    widths: tuple[int, ...] = (16, 24, 24, 32)
    strides: tuple[int, ...] = (2, 1, 2, 1)
    options: tuple[str, ...] = ("e1_k3", "e1_k5", "e3_k3", "e3_k5")
    side: int = 28
    in_channels: int = 1
    num_classes: int = 10

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.strides) or not self.widths:
            raise ValueError(f"need one stride per block, got widths {self.widths} and strides {self.strides}")
        unknown = set(self.options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown block options {sorted(unknown)}; known: {sorted(OPTIONS)}")

    @property
    def stem_side(self) -> int:
        return _out_side(self.side, 2)

    def blocks(self, arch: Arch) -> list[Block]:
        if len(arch) != len(self.widths):
            raise ValueError(f"an architecture has {len(self.widths)} blocks, got {len(arch)}: {arch}")
        out, c_in, side = [], self.stem, self.stem_side
        for width, stride, option in zip(self.widths, self.strides, arch):
            expansion, kernel = OPTIONS[self.options[option]]
            out.append(Block(c_in, width, expansion, kernel, stride, side, _out_side(side, stride)))
            c_in, side = width, _out_side(side, stride)
        return out


@dataclass(frozen=True)
class ProxyRecipe:
    """The proxy training: subset sizes (drawn from the training split) and the optimisation."""

    n_train: int
    n_val: int
    epochs: int
    batch_size: int = 64
    lr: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0


SETTINGS = {
    "quick": (CNNSpaceSpec(widths=(16, 24, 32), strides=(2, 2, 1), options=("e1_k3", "e3_k5")), ProxyRecipe(n_train=1000, n_val=500, epochs=2)),
    "full": (CNNSpaceSpec(), ProxyRecipe(n_train=1500, n_val=1500, epochs=3)),
}


def _out_side(side: int, stride: int) -> int:
    return (side - 1) // stride + 1  # 'same' padding (k // 2) for odd k


def layers(spec: CNNSpaceSpec, arch: Arch) -> list[Conv]:
    """Every weight layer of network ``arch`` (each convolution with its BN; the head as a 1x1 on a 1x1 map)."""
    out = [Conv(spec.in_channels, spec.stem, 3, spec.stem_side)]
    for b in spec.blocks(arch):
        mid = b.c_in * b.expansion
        if b.expansion > 1:
            out.append(Conv(b.c_in, mid, 1, b.side_in))
        out += [Conv(mid, mid, b.kernel, b.side_out, groups=mid), Conv(mid, b.c_out, 1, b.side_out)]
    out.append(Conv(spec.widths[-1], spec.num_classes, 1, 1, bn=False, bias=True))
    return out


def macs(spec: CNNSpaceSpec, arch: Arch) -> int:
    return cost.macs(layers(spec, arch))


def parameters(spec: CNNSpaceSpec, arch: Arch) -> int:
    return cost.parameters(layers(spec, arch))


class MBConv(nn.Module):
    """MobileNetV2's inverted residual block (see the module docstring)."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        mid = block.c_in * block.expansion
        expand = [nn.Conv2d(block.c_in, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6()] if block.expansion > 1 else []
        self.body = nn.Sequential(
            *expand,
            nn.Conv2d(mid, mid, block.kernel, block.stride, block.kernel // 2, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, block.c_out, 1, bias=False), nn.BatchNorm2d(block.c_out),
        )
        self.residual = block.stride == 1 and block.c_in == block.c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def build_model(spec: CNNSpaceSpec, arch: Arch) -> nn.Module:
    """The network ``arch`` (uninitialised seed: call :func:`kdlib.train.set_seed` first for reproducibility)."""
    return nn.Sequential(
        nn.Conv2d(spec.in_channels, spec.stem, 3, 2, 1, bias=False), nn.BatchNorm2d(spec.stem), nn.ReLU6(),
        *[MBConv(b) for b in spec.blocks(arch)],
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(spec.widths[-1], spec.num_classes),
    )


@dataclass(frozen=True)
class ProxyData:
    """The tensors of one proxy task (standardised with the training subset's statistics)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@lru_cache(maxsize=2)
def proxy_data(n_train: int, n_val: int) -> ProxyData:
    """Disjoint stratified train / validation subsets of the training split (fixed seed 0) and the test split."""
    train, test = load(DATASET, "train"), load(DATASET, "test")
    split = semi_supervised_split(train.y, n_labelled=n_train, n_validation=n_val, n_unlabelled=0, seed=0)
    pixels = train.x[split.labelled].astype(np.float32) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())

    def tensor(images: np.ndarray) -> torch.Tensor:
        return images_to_tensor(images, mean, std).contiguous(memory_format=torch.channels_last)  # ~2x faster depthwise convs on CPU

    return ProxyData(
        tensor(train.x[split.labelled]), torch.tensor(train.y[split.labelled]), tensor(train.x[split.validation]),
        torch.tensor(train.y[split.validation]), tensor(test.x), torch.tensor(test.y),
    )


def train_proxy(spec: CNNSpaceSpec, recipe: ProxyRecipe, arch: Arch) -> dict:
    """Train ``arch`` once with the proxy recipe on :data:`PROXY_THREADS` torch threads; returns validation and test
    accuracy and the seconds it took."""
    data = proxy_data(recipe.n_train, recipe.n_val)
    with torch_threads(PROXY_THREADS):
        set_seed(recipe.seed)
        model = build_model(spec, arch).to(memory_format=torch.channels_last)
        start, cpu = time.perf_counter(), time.process_time()
        config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, weight_decay=recipe.weight_decay, patience=None, cosine=True)
        fit(model, get_objective("ce"), TrainSet(data.x_train, data.y_train), config=config, seed=recipe.seed, progress=False)
        return {
            "val_accuracy": evaluate(model, data.x_val, data.y_val, batch_size=256),  # small batches: 2x faster here
            "test_accuracy": evaluate(model, data.x_test, data.y_test, batch_size=256),
            "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu,
        }


NAMESPACE = "nas_proxy_cnn"


def proxy_key(spec: CNNSpaceSpec, recipe: ProxyRecipe, arch: Arch) -> dict:
    """The cache key of one architecture's proxy result."""
    return {"spec": spec, "recipe": recipe, "arch": list(arch), "data": data_version(DATASET), "version": PROXY_VERSION}


def trained_architectures(profile: str, cache: Cache | None = None) -> list[dict]:
    """The cached proxy results of ``profile``'s space (architecture, accuracies, seconds), without training any."""
    spec, recipe = pick(profile, SETTINGS)
    cache = cache or Cache()
    out = []
    for arch in np.ndindex((len(spec.options),) * len(spec.widths)):
        found, result = cache.lookup(NAMESPACE, proxy_key(spec, recipe, arch))
        if found:
            out.append({"arch": tuple(int(a) for a in arch), **result})
    return out


def proxy_cnn_space(profile: str, cache: Cache | None = None) -> SearchSpace:
    """The CNN space of ``profile`` (quick: 3 blocks x 2 options, 2 epochs on 1,000 images;
    full: 4 blocks x 4 options, 3 epochs on 1,500 images).

    Every evaluation trains the architecture (or reads it from the cache: namespace :data:`NAMESPACE`).
    """
    spec, recipe = pick(profile, SETTINGS)
    cache = cache or Cache()
    shape = (len(spec.options),) * len(spec.widths)
    costs = np.empty(shape)
    for index in np.ndindex(shape):
        costs[index] = macs(spec, index)

    def evaluate_arch(arch: Arch) -> Evaluation:
        result = cache.get_or_compute(NAMESPACE, proxy_key(spec, recipe, arch), lambda: train_proxy(spec, recipe, arch))
        return Evaluation(result["val_accuracy"], result["test_accuracy"])

    return SearchSpace(
        "CNN Fashion-MNIST", tuple(Layer(f"block{i + 1}", spec.options) for i in range(len(spec.widths))), costs, evaluate_arch,
        cost_name="MACs", description=f"MobileNetV2-like blocks on Fashion-MNIST, {recipe.epochs}-epoch proxy on {recipe.n_train} images",
    )
