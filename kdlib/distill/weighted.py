"""Weighted distillation with unlabelled examples (Iliopoulos et al., NeurIPS 2022): debiasing per-example weights.

The student's loss on each teacher-labelled example x of the unlabelled pool is multiplied by a weight w(x) in
[0, 1] that is estimated, without any hyper-parameter, from the teacher's confidence on a labelled validation set.
The paper's formula could not be read; both candidates of the notes are implemented [R]:

* **R2, "error probability and distortion"** (the main method; the only candidate built from the two quantities a
  later paper names, p(x) and d_f(x)). If the teacher's label is wrong with probability p(x), the expected loss on
  the teacher's label is (1 - p) l(f, y) + p l(f, y_alt); the weight that makes it unbiased for the clean loss is

      w(x) = min(1, 1 / ((1 - p(x)) + p(x) d_f(x))),    d_f(x) = l(f(x), y_alt) / l(f(x), y_teacher),

  with l the student's cross-entropy, y_alt the teacher's other classes weighted by its probabilities, and the
  current student f (recomputed at every step, no gradient through w).
* **R1, "teacher correctness"** (the ablation): w(x) = 1 - p(x), the classical importance weight for a teacher
  whose label is right with probability 1 - p(x).

p(x) = 1 - P(teacher right | its top-1 margin) by isotonic regression on the validation set
(:class:`~kdlib.distill.correctness.CorrectnessCalibration` with floor 0). Weights multiply the per-example loss,
with hard (argmax) and with soft (probability) teacher labels alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.kd import teacher_of
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


def correctness_weight(error: torch.Tensor) -> torch.Tensor:
    """R1: w(x) = 1 - p(x)."""
    _check_error(error)
    return 1.0 - error


def distortion(student_logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """d_f(x) = l(f, y_alt) / l(f, y_teacher) per row, with l the cross-entropy of the student's softmax.

    y_alt is the teacher's distribution over its non-top-1 classes (uniform over them if the teacher put no mass
    there); shapes: logits (..., N, C), teacher probabilities (N, C) -> (..., N).
    """
    if student_logits.shape[-2:] != teacher_probs.shape:
        raise ValueError(f"student logits (..., N, C) and teacher probabilities (N, C) disagree: {tuple(student_logits.shape)} vs {tuple(teacher_probs.shape)}")
    log_probs = torch.log_softmax(student_logits, dim=-1)
    top1 = teacher_probs.argmax(-1, keepdim=True)
    others = teacher_probs.scatter(-1, top1, 0.0) + EPSILON
    others = others.scatter(-1, top1, 0.0)
    others = others / others.sum(-1, keepdim=True)
    loss_teacher = -log_probs.gather(-1, top1.expand(*log_probs.shape[:-1], 1)).squeeze(-1)
    loss_alternative = -(others * log_probs).sum(-1)
    return loss_alternative / loss_teacher.clamp_min(EPSILON)


def debiasing_weight(error: torch.Tensor, distortion_ratio: torch.Tensor) -> torch.Tensor:
    """R2: w = min(1, 1 / ((1 - p) + p d)) (broadcast over leading axes of ``distortion_ratio``)."""
    _check_error(error)
    if (distortion_ratio < 0).any():
        raise ValueError("the distortion is a ratio of losses and cannot be negative")
    return (1.0 / ((1.0 - error) + error * distortion_ratio).clamp_min(EPSILON)).clamp(max=1.0)


@register_objective("debiased_distillation")
class DebiasedDistillation:
    """R2: CE on L's labels; on the pool, ``w(x) * CE(teacher label, student)`` with ``w`` the debiasing weight of the
    current student (no gradient through it). ``teacher_error`` (N,) is p(x), aligned with the training set."""

    def __init__(self, teacher_error: torch.Tensor, target: Target = "soft") -> None:
        teacher_error = torch.as_tensor(teacher_error, dtype=torch.float32)
        _check_error(teacher_error)
        teacher_targets(torch.zeros(1, 2), target)
        self.teacher_error, self.target = teacher_error, target

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        probs = F.softmax(teacher_of(batch), 1)
        error = self.teacher_error.to(outputs.device)[batch.index]
        weight = debiasing_weight(error, distortion(outputs.detach(), probs))
        pool = -(teacher_targets(batch.teacher, self.target) * F.log_softmax(outputs, 1)).sum(1)
        return on_labels_and_pool(outputs, batch, weight * pool)
