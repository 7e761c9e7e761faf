"""Weighted distillation with unlabelled examples (Iliopoulos et al., NeurIPS 2022): the student's loss on each
teacher-labelled example x of the pool, corrected for the probability p(x) that the teacher's label is wrong.

The paper's formula could not be read (notes ``03_weighted_distillation.md`` §3); everything here is a
reconstruction [R]. p(x) = P(teacher's top-1 is wrong | its top-1 - top-2 margin) is an isotonic fit on the labelled
validation set V only (:func:`teacher_error`), with no hyper-parameter.

* **The method under test, the expected clean loss.** The teacher is a fixed function of x, so what is random is the
  true label given x: it is the teacher's label y_t with probability 1 - p(x), else another class j with
  probability p(x) q_j(x). The conditional expectation of the clean loss is then

      E[l(f(x), y) | x] = (1 - p(x)) l(f(x), y_t) + p(x) sum_{j != y_t} q_j(x) l(f(x), j),

  i.e. the cross-entropy to the target (1 - p) e_{y_t} + p q: the teacher's label is down-weighted to 1 - p(x)
  and the freed weight goes to the other classes. It is unbiased for every student f (given calibrated p and q)
  and bounded below (a cross-entropy to a distribution). ``hard``: q uniform over the other classes (only the
  teacher's argmax is used); ``soft``: q the teacher's probabilities over its other classes. A calibrated soft
  teacher (top-1 probability 1 - p) already is this target: the soft variant only recalibrates the top-1.
* **R1 (ablation): w(x) = 1 - p(x)** on the teacher's label, nothing elsewhere: the importance weight
  P(y = y_t | x) / P(y_t | x) of a deterministic teacher. It down-weights likely-wrong labels but drops the p(x)
  share of the clean loss, so it is biased low.
* **R2 (ablation): w = min(1, 1 / ((1 - p) + p d_f))**, d_f = l(f, y_alt) / l(f, y_t) under the current student:
  the earlier reconstruction from the notes. It is *not* unbiased (in the binary flip check, p = 0.3 and losses
  0.4 / 2.0, its expected loss is 0.727 against the clean 0.400), and it gives the larger weight where the student
  disagrees with the teacher, mistakes included.
* **Backward correction** (Natarajan et al. 2013; its multi-class form, Patrini et al. 2017, with the uniform
  transition T = (1 - p) I + p / (C - 1) (11^T - I)): unbiased when the teacher's label is a random flip of a
  fixed true label (the forward model) but not for a deterministic teacher, unbounded below, and it *up*-weights
  the teacher's label (by (1 - p / (C - 1)) / (1 - p C / (C - 1)) > 1). Kept as a function for that comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.kd import check_logits, teacher_of
from kdlib.distill.registry import register_objective
from kdlib.distill.teacher_labels import Target, on_labels_and_pool, teacher_targets
from kdlib.train import Batch

EPSILON = 1e-6


def teacher_error(teacher_probs_val: torch.Tensor, labels_val: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """p(x): the estimated probability that the teacher's top-1 label of each row of ``teacher_probs`` is wrong."""
    return 1.0 - CorrectnessCalibration(teacher_probs_val, labels_val, floor=0.0)(teacher_probs)


def _check_error(error: torch.Tensor) -> None:
    if ((error < 0) | (error > 1) | torch.isnan(error)).any():
        raise ValueError("teacher error probabilities must lie in [0, 1]")


def other_classes(teacher_probs: torch.Tensor, uniform: bool = False) -> torch.Tensor:
    """q(x): a distribution over the teacher's non-top-1 classes, (N, C) -> (N, C) with 0 at the top-1.

    The teacher's probabilities there, renormalised (uniform if it put no mass there), or uniform with ``uniform``.
    """
    top1 = teacher_probs.argmax(-1, keepdim=True)
    mass = torch.ones_like(teacher_probs) if uniform else teacher_probs.scatter(-1, top1, 0.0) + EPSILON
    mass = mass.scatter(-1, top1, 0.0)
    return mass / mass.sum(-1, keepdim=True)


def correctness_weight(error: torch.Tensor) -> torch.Tensor:
    """R1: w(x) = 1 - p(x)."""
    _check_error(error)
    return 1.0 - error


def expected_clean_target(teacher_probs: torch.Tensor, error: torch.Tensor, target: Target = "soft") -> torch.Tensor:
    """The method's target (1 - p) e_{y_t} + p q per row: its cross-entropy is the expected clean loss.

    ``target`` "hard" spreads p uniformly over the other classes, "soft" by the teacher's probabilities there.
    Shapes: teacher probabilities (N, C), error (N,) -> (N, C).
    """
    _check_error(error)
    if teacher_probs.ndim != 2 or error.shape != teacher_probs.shape[:1]:
        raise ValueError(f"teacher probabilities must be (N, C) and errors (N,), got {tuple(teacher_probs.shape)} and {tuple(error.shape)}")
    if target not in ("hard", "soft"):
        raise ValueError(f"target must be 'hard' or 'soft', got {target!r}")
    label = F.one_hot(teacher_probs.argmax(1), teacher_probs.shape[1]).to(teacher_probs.dtype)
    return (1.0 - error)[:, None] * label + error[:, None] * other_classes(teacher_probs, uniform=target == "hard")


def backward_corrected_loss(class_losses: torch.Tensor, teacher_label: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """Natarajan et al.'s unbiased loss, multi-class with a uniform flip: (l_{y_t} - b sum_j l_j) / a per row, with
    b = p / (C - 1) and a = 1 - p C / (C - 1) (binary: ((1 - p) l_{y_t} - p l_other) / (1 - 2p)).

    Shapes: per-class losses (..., C), teacher labels and errors (...,) -> (...,).

    Raises:
        ValueError: p >= (C - 1) / C somewhere (the transition matrix is singular there).
    """
    _check_error(error)
    classes = class_losses.shape[-1]
    flip = error / (classes - 1)
    scale = 1.0 - classes * flip
    if (scale <= 0).any():
        raise ValueError(f"backward correction needs p < (C - 1) / C = {(classes - 1) / classes:.3f}: the transition matrix is singular there")
    own = class_losses.gather(-1, teacher_label[..., None]).squeeze(-1)
    return (own - flip * class_losses.sum(-1)) / scale


def distortion(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """d_f(x) = l(f, y_alt) / l(f, y_teacher) per row, with l the cross-entropy of the student's softmax and y_alt
    the teacher's other classes (:func:`other_classes`); logits (..., N, C), teacher probabilities (N, C) -> (..., N)."""
    if student_logits.shape[-2:] != teacher_probs.shape:
        raise ValueError(f"student logits (..., N, C) and teacher probabilities (N, C) disagree: {tuple(student_logits.shape)} vs {tuple(teacher_probs.shape)}")
    log_probs = torch.log_softmax(student_logits, dim=-1)
    top1 = teacher_probs.argmax(-1, keepdim=True)
    loss_teacher = -log_probs.gather(-1, top1.expand(*log_probs.shape[:-1], 1)).squeeze(-1)
    loss_alternative = -(other_classes(teacher_probs) * log_probs).sum(-1)
    return loss_alternative / loss_teacher.clamp_min(EPSILON)


def debiasing_weight(error: torch.Tensor, distortion_ratio: torch.Tensor) -> torch.Tensor:
    """R2: w = min(1, 1 / ((1 - p) + p d)) (broadcast over leading axes of ``distortion_ratio``)."""
    _check_error(error)
    if (distortion_ratio < 0).any():
        raise ValueError("the distortion is a ratio of losses and cannot be negative")
    return (1.0 / ((1.0 - error) + error * distortion_ratio).clamp_min(EPSILON)).clamp(max=1.0)


def _aligned_error(teacher_error: torch.Tensor) -> torch.Tensor:
    teacher_error = torch.as_tensor(teacher_error, dtype=torch.float32)
    if teacher_error.ndim != 1:
        raise ValueError(f"teacher_error must be a vector with one entry per training example, got shape {tuple(teacher_error.shape)}")
    _check_error(teacher_error)
    return teacher_error


@register_objective("expected_clean_loss")
class ExpectedCleanLoss:
    """The method under test [R]: CE on L's labels; on the pool, CE to (1 - p) e_{y_t} + p q (the expected clean loss,
    :func:`expected_clean_target`). ``teacher_error`` (N,) is p(x), aligned with the training set."""

    def __init__(self, teacher_error: torch.Tensor, target: Target = "soft") -> None:
        teacher_targets(torch.zeros(1, 2), target)  # validates the target kind
        self.teacher_error, self.target = _aligned_error(teacher_error), target

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher = teacher_of(batch)
        check_logits(outputs, batch.labels, teacher)
        error = self.teacher_error.to(outputs.device)[batch.index]
        target = expected_clean_target(F.softmax(teacher, 1), error, self.target)
        return on_labels_and_pool(outputs, batch, -(target * F.log_softmax(outputs, 1)).sum(1))


@register_objective("distortion_weighted_distillation")
class DistortionWeightedDistillation:
    """R2 (an ablation; its weights are not unbiased): CE on L's labels; on the pool,
    ``w(x) * CE(teacher label, student)`` with ``w`` the R2 weight of the current student (no gradient through it).
    ``teacher_error`` (N,) is p(x), aligned with the training set."""

    def __init__(self, teacher_error: torch.Tensor, target: Target = "soft") -> None:
        teacher_targets(torch.zeros(1, 2), target)
        self.teacher_error, self.target = _aligned_error(teacher_error), target

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        probs = F.softmax(teacher_of(batch), 1)
        error = self.teacher_error.to(outputs.device)[batch.index]
        weight = debiasing_weight(error, distortion(outputs.detach(), probs))
        pool = -(teacher_targets(batch.teacher, self.target) * F.log_softmax(outputs, 1)).sum(1)
        return on_labels_and_pool(outputs, batch, weight * pool)
