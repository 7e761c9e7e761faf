"""Distillation on a teacher-labelled pool: the baselines of notebooks 02-04.

The training set joins a labelled set L (label >= 0: cross-entropy on the true label) and a pool U the teacher
labels (label -1). On U the student fits the teacher's label, hard (its argmax) or soft (its probabilities
``softmax(batch.teacher)``), optionally with a per-example weight:

* ``hard_distillation`` / ``soft_distillation``: every pool example, weight 1;
* ``confidence_threshold``: hard labels, only where the teacher's top probability reaches ``threshold``;
* ``weighted_distillation``: fixed per-example weights (aligned with the training set; e.g. 1 - p(x), a constant,
  or the oracle's 1[teacher right]);
* ``target_distillation``: fixed per-example target distributions (a ceiling that reads the truth).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from kdlib.distill.kd import check_logits, label_cross_entropy, teacher_of
from kdlib.distill.registry import register_objective
from kdlib.train import Batch

Target = Literal["hard", "soft"]


def teacher_targets(teacher_logits: torch.Tensor, target: Target) -> torch.Tensor:
    """The teacher's label of each example: one-hot argmax (``"hard"``) or its probabilities (``"soft"``)."""
    if target not in ("hard", "soft"):
        raise ValueError(f"target must be 'hard' or 'soft', got {target!r}")
    probs = F.softmax(teacher_logits, dim=1)
    return F.one_hot(probs.argmax(1), probs.shape[1]).to(probs.dtype) if target == "hard" else probs


def on_labels_and_pool(outputs: torch.Tensor, batch: Batch, pool_loss: torch.Tensor) -> torch.Tensor:
    """Per example: the true label's cross-entropy on L, ``pool_loss`` on U (label -1)."""
    return torch.where(batch.labels >= 0, label_cross_entropy(outputs, batch.labels), pool_loss)


def _pool_cross_entropy(outputs: torch.Tensor, batch: Batch, target: Target) -> torch.Tensor:
    teacher = teacher_of(batch)
    check_logits(outputs, batch.labels, teacher)
    return -(teacher_targets(teacher, target) * F.log_softmax(outputs, 1)).sum(1)


@register_objective("hard_distillation")
class HardDistillation:
    """CE on L's labels and on the teacher's argmax on U."""

    target: Target = "hard"

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return on_labels_and_pool(outputs, batch, _pool_cross_entropy(outputs, batch, self.target))


@register_objective("soft_distillation")
class SoftDistillation(HardDistillation):
    """CE on L's labels and on the teacher's probabilities on U (vanilla distillation)."""

    target: Target = "soft"


@register_objective("confidence_threshold")
class ConfidenceThreshold:
    """Hard distillation on the pool examples whose teacher top-1 probability is at least ``threshold``."""

    def __init__(self, threshold: float) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        keep = F.softmax(teacher_of(batch), 1).max(1).values >= self.threshold
        return on_labels_and_pool(outputs, batch, _pool_cross_entropy(outputs, batch, "hard") * keep)


@register_objective("weighted_distillation")
class WeightedDistillation:
    """CE on L's labels; on U, ``weight[i] * CE(teacher label, student)`` with fixed weights (N,) aligned with the
    training set (rows of labelled examples are ignored).

    With ``normalise``, the batch loss is the weighted mean over the batch's examples (each labelled example counts
    1, each pool example its weight) instead of the plain batch mean: a student trained on a subset of the training
    set (0/1 weights, e.g. its own queries in active learning) then averages over its own examples only.
    """

    def __init__(self, weights: torch.Tensor, target: Target = "soft", normalise: bool = False) -> None:
        weights = torch.as_tensor(weights, dtype=torch.float32)
        if weights.ndim != 1 or ((weights < 0) | torch.isnan(weights)).any():
            raise ValueError("weights must be a non-negative vector with one entry per training example")
        teacher_targets(torch.zeros(1, 2), target)  # validates the target kind
        self.weights, self.target, self.normalise = weights, target, normalise

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        weights = self.weights.to(outputs.device)[batch.index]
        loss = on_labels_and_pool(outputs, batch, weights * _pool_cross_entropy(outputs, batch, self.target))
        if not self.normalise:
            return loss
        counted = torch.where(batch.labels >= 0, torch.ones_like(weights), weights).sum()
        return loss * len(loss) / counted.clamp_min(1.0)


@register_objective("target_distillation")
class TargetDistillation:
    """CE on L's labels; on U, CE to fixed per-example target distributions (N, C) aligned with the training set
    (rows of labelled examples are ignored), e.g. notebook 02's corrected-label ceiling: the teacher's probabilities
    where its top-1 is right, the true label where it is wrong."""

    def __init__(self, targets: torch.Tensor) -> None:
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.ndim != 2 or (targets < 0).any() or not torch.allclose(targets.sum(1), torch.ones(len(targets)), atol=1e-4):
            raise ValueError("targets must be (N, C) probability rows, one per training example")
        self.targets = targets

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets = self.targets.to(outputs.device)[batch.index]
        if targets.shape != outputs.shape:
            raise ValueError(f"targets {tuple(targets.shape)} do not match the outputs {tuple(outputs.shape)}")
        return on_labels_and_pool(outputs, batch, -(targets * F.log_softmax(outputs, 1)).sum(1))
