"""Counting a network's cost from its layer list: trainable parameters and multiply-accumulates (MACs).

A network is described as a list of :class:`Conv` and :class:`BatchNorm` entries (a linear layer is a 1x1
convolution on a 1x1 map). MACs count the convolutions and linear layers only; BN, activations, pooling and
residual additions are left out, as in the usual MAdds / FLOPs tables of NAS papers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Conv:
    """A k x k convolution with ``groups`` groups producing ``c_out`` maps of ``side_out``², followed by an affine BN
    when ``bn`` (its 2·c_out parameters counted here)."""

    c_in: int
    c_out: int
    kernel: int
    side_out: int
    groups: int = 1
    bn: bool = True
    bias: bool = False

    def __post_init__(self) -> None:
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ValueError(f"channels {self.c_in} -> {self.c_out} are not divisible by groups={self.groups}")

    def params(self) -> int:
        weights = self.kernel**2 * (self.c_in // self.groups) * self.c_out
        return weights + (self.c_out if self.bias else 0) + (2 * self.c_out if self.bn else 0)

    def macs(self) -> int:
        return self.kernel**2 * (self.c_in // self.groups) * self.c_out * self.side_out**2


@dataclass(frozen=True)
class BatchNorm:
    """A stand-alone affine BN (2·channels parameters, no MACs counted)."""

    channels: int

    def params(self) -> int:
        return 2 * self.channels

    def macs(self) -> int:
        return 0


def parameters(layers: Iterable[Conv | BatchNorm]) -> int:
    return sum(layer.params() for layer in layers)


def macs(layers: Iterable[Conv | BatchNorm]) -> int:
    return sum(layer.macs() for layer in layers)
