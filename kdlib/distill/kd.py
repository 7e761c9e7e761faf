"""Cross-entropy on labels and vanilla knowledge distillation (Hinton, Vinyals & Dean 2015).

Every objective follows one contract: ``objective(outputs, batch) -> (B,)`` per-example losses (the engine minimises
their batch mean). ``batch.labels`` holds class ids (-1: unlabelled; their label term is 0) or soft (B, C) labels
(Mixup / CutMix); ``batch.teacher`` the teacher's logits on the same batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.registry import register_objective
from kdlib.train import Batch


def check_logits(student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None) -> None:
    """Raise a clear error on mismatched shapes. Labels are class indices (N,) or soft targets (N, C), e.g. mixup's."""
    if student_logits.ndim != 2:
        raise ValueError(f"student logits must be (N, C), got shape {tuple(student_logits.shape)}")
    if labels.shape != student_logits.shape[:1] and labels.shape != student_logits.shape:
        raise ValueError(f"labels must be (N,) = ({student_logits.shape[0]},) or soft (N, C), got shape {tuple(labels.shape)}")
    if teacher_logits is not None and teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} and student logits {tuple(student_logits.shape)} differ in shape")


def teacher_of(batch: Batch) -> torch.Tensor:
    """The batch's teacher logits, or a clear error for an objective that needs them."""
    if batch.teacher is None:
        raise ValueError("this objective needs teacher logits: give the training set's `teacher` or a `teacher_model`")
    return batch.teacher


def label_cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy on class ids (0 for unlabelled examples, label -1) or against soft targets (N, C)."""
    if labels.ndim == 2:
        return -(labels * F.log_softmax(student_logits, dim=1)).sum(1)
    return F.cross_entropy(student_logits, labels, ignore_index=-1, reduction="none")  # one fused kernel each way


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-example ``T^2 * KL(softmax(t/T) || softmax(s/T))``: the soft term of knowledge distillation."""
    t = temperature
    teacher_log = F.log_softmax(teacher_logits / t, dim=1)
    return t * t * (teacher_log.exp() * (teacher_log - F.log_softmax(student_logits / t, dim=1))).sum(1)


@register_objective("ce")
class LabelCrossEntropy:
    """The student alone: cross-entropy on the true labels, the teacher ignored."""

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        check_logits(outputs, batch.labels, None)
        return label_cross_entropy(outputs, batch.labels)


@register_objective("kd")
class VanillaKD:
    """Hinton et al. (2015), Sec. 2: ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(y, s)``.

    The ``T^2`` factor keeps the soft term's gradient scale independent of ``T``. Unlabelled examples
    (label ``-1``) contribute only the soft term.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = temperature
        self.alpha = alpha

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher = teacher_of(batch)
        check_logits(outputs, batch.labels, teacher)
        loss = self.alpha * soft_kl(outputs, teacher, self.temperature)
        if self.alpha < 1.0:
            loss = loss + (1.0 - self.alpha) * label_cross_entropy(outputs, batch.labels)
        return loss


@register_objective("kd_sum")
class SumKD:
    """Vanilla KD as the VanillaKD paper runs it (Hao et al. 2023): ``ce_weight * CE(y, s) + kd_weight * T^2 *
    KL(softmax(t/T) || softmax(s/T))`` with T = 1 and both weights 1 by default (the teacher sees the student's
    augmented input: give the engine a ``teacher_model``)."""

    def __init__(self, temperature: float = 1.0, kd_weight: float = 1.0, ce_weight: float = 1.0) -> None:
        if temperature <= 0 or kd_weight < 0 or ce_weight < 0:
            raise ValueError(f"need temperature > 0 and non-negative weights, got T={temperature}, kd_weight={kd_weight}, ce_weight={ce_weight}")
        self.temperature, self.kd_weight, self.ce_weight = temperature, kd_weight, ce_weight

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher = teacher_of(batch)
        check_logits(outputs, batch.labels, teacher)
        return self.kd_weight * soft_kl(outputs, teacher, self.temperature) + self.ce_weight * label_cross_entropy(outputs, batch.labels)
