"""The dynamic loss network (DLN) of L2T-DLN (Hai et al., NeurIPS 2023) over the 1-vs-1 view of a classifier's logits.

The 1-vs-1 transformation (the authors' ``MetaOptimizer.forward``, repository 1017137588qqcom/L2T-DLN) turns logits
``z`` (B, C) and class ids ``y`` into B·C rows of 4 numbers, one row per (example b, class j), with ``s = sigmoid(z)``
(element-wise, not a softmax)::

    row(b, j) = [s_{b,y_b}, s_{b,j}, 1, 0]   for j != y_b    (true score, other score, pair label (1, 0))
    row(b, y_b) = [0, 0, 0, 0]                               (a bias-free network maps it to 0)

The DLN is a bias-free MLP 4 -> 40 -> 40 -> 40 -> 40 -> 1 with LeakyReLU, Kaiming-normal (fan-out) weights; the
loss is the mean of its outputs over all B·C rows, zero rows included, so it does not depend on C's meaning and is a
learned function of (true score, other score) pairs. Per example (the kdlib objective contract) it is the mean over
that example's C rows, whose batch mean is the paper's loss.

:func:`pairwise_bce_init` regresses a DLN onto twice the pairwise binary cross-entropy ``-log s_y - log(1 - s_j)`` of
its own 1-vs-1 inputs (our choice, not the paper's: the notes' pilot found a random DLN a poor starting loss). The
factor 2 makes a DLN student's logit gradient at equal logits exactly cross-entropy's, ``1/C - [j = y]``, for any C
(the mean over C rows halves the pairwise terms' gradient ``(1 - s_y)`` and ``s_j`` at s = 1/2), so a fixed or taught
DLN starts where a CE student does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (40, 40, 40, 40)  # the authors' hidden widths


def one_vs_one(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The 1-vs-1 view (B·C, 4) of logits (B, C) and class ids (B,); row ``b * C + j`` is (example b, class j).

    Raises:
        ValueError: logits not (B, C) with C >= 2, labels not (B,) class ids in [0, C).
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (B, C) with C >= 2, got shape {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1] or labels.dtype in (torch.float16, torch.float32, torch.float64):
        raise ValueError(f"labels must be ({logits.shape[0]},) class ids (the 1-vs-1 view has no soft labels), got {labels.dtype} {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got {labels.min().item()}..{labels.max().item()}")
    scores = torch.sigmoid(logits)
    other = 1.0 - F.one_hot(labels, logits.shape[1]).to(scores.dtype)  # 0 at the target class
    true = scores.gather(1, labels[:, None]).expand_as(scores)
    rows = torch.stack([true, scores, torch.ones_like(scores), torch.zeros_like(scores)], dim=-1) * other[..., None]
    return rows.reshape(-1, 4)


class LossNetwork(nn.Module):
    """``forward(logits, labels) -> (B,)``: the DLN's mean output over each example's C rows of the 1-vs-1 view."""

    def __init__(self, seed: int, widths: tuple[int, ...] = WIDTHS, negative_slope: float = 0.01) -> None:
        super().__init__()
        if not widths or min(widths) < 1 or negative_slope < 0:
            raise ValueError(f"invalid loss network: widths={widths}, negative_slope={negative_slope}")
        sizes = (4, *widths, 1)
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.negative_slope = negative_slope
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.layers:  # Kaiming normal, fan-out, LeakyReLU gain (the authors' MetaLinear init)
                std = (2.0 / (1 + negative_slope**2)) ** 0.5 / layer.out_features**0.5
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)

    def row_losses(self, rows: torch.Tensor) -> torch.Tensor:
        """The network on 1-vs-1 rows (N, 4) -> (N,)."""
        for layer in self.layers[:-1]:
            rows = F.leaky_relu(layer(rows), self.negative_slope)
        return self.layers[-1](rows)[:, 0]

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.row_losses(one_vs_one(logits, labels)).view(logits.shape).mean(1)


INIT_SCALE = 2.0  # the pairwise target's factor: a DLN student's gradient at equal logits is cross-entropy's


def pairwise_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss :func:`pairwise_bce_init` fits, per example as a DLN computes it: the mean over the C rows of
    ``2 (-log s_y - log(1 - s_j))`` for j != y and 0 for the target row."""
    true = F.softplus(-logits.gather(1, labels[:, None]))  # -log sigmoid(z_y), (B, 1)
    other = F.softplus(logits) * (1.0 - F.one_hot(labels, logits.shape[1]).to(logits.dtype))  # -log(1 - sigmoid(z_j)), 0 at y
    c = logits.shape[1]
    return INIT_SCALE * ((c - 1) * true[:, 0] + other.sum(1)) / c


def pairwise_bce_init(network: LossNetwork, steps: int = 1000, logit_range: float = 6.0, samples: int = 1024, lr: float = 3e-3,
                      seed: int = 0) -> float:
    """Fit ``network`` in place to ``2 x`` pairwise BCE on its own rows, (true, other) logits drawn uniformly in
    ±``logit_range``, by Adam on the mean squared error. Returns the final root-mean-square error (loss units).

    Raises:
        ValueError: non-positive steps, range, samples or learning rate.
    """
    if steps < 1 or logit_range <= 0 or samples < 1 or lr <= 0:
        raise ValueError(f"need positive steps, logit_range, samples and lr, got {steps}, {logit_range}, {samples}, {lr}")
    generator = torch.Generator().manual_seed(seed)
    z = (torch.rand(samples, 2, generator=generator) * 2 - 1) * logit_range  # (true logit, other logit)
    s = torch.sigmoid(z)
    rows = torch.cat([s, torch.ones(samples, 1), torch.zeros(samples, 1)], 1)
    target = INIT_SCALE * (F.softplus(-z[:, 0]) + F.softplus(z[:, 1]))
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        error = (network.row_losses(rows) - target).square().mean()
        error.backward()
        optimizer.step()
    with torch.no_grad():
        return float((network.row_losses(rows) - target).square().mean().sqrt())
