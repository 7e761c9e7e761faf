"""Cross-entropy on labels and vanilla knowledge distillation (Hinton, Vinyals & Dean 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.registry import register_objective


def check_logits(student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None) -> None:
    """Raise a clear error on mismatched shapes. Labels are class indices (N,) or soft targets (N, C), e.g. mixup's."""
    if student_logits.ndim != 2:
        raise ValueError(f"student logits must be (N, C), got shape {tuple(student_logits.shape)}")
    if labels.shape != student_logits.shape[:1] and labels.shape != student_logits.shape:
        raise ValueError(f"labels must be (N,) = ({student_logits.shape[0]},) or soft (N, C), got shape {tuple(labels.shape)}")
    if teacher_logits is not None and teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} and student logits {tuple(student_logits.shape)} differ in shape")


def masked_cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled examples (``labels >= 0``; zero if there are none), or against soft
    targets (N, C)."""
    if labels.ndim == 2:
        return -(labels * F.log_softmax(student_logits, dim=1)).sum(1).mean()
    labelled = labels >= 0
    if not labelled.any():
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits[labelled], labels[labelled])


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * mean_batch KL(softmax(t/T) || softmax(s/T))``: the soft term of knowledge distillation."""
    t = temperature
    return t * t * F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1), reduction="batchmean", log_target=True)


@register_objective("ce")
class LabelCrossEntropy:
    """The student alone: cross-entropy on the true labels, the teacher ignored."""

    def __call__(self, student_logits, labels, teacher_logits=None):
        check_logits(student_logits, labels, None)
        return masked_cross_entropy(student_logits, labels)


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

    def __call__(self, student_logits, labels, teacher_logits):
        check_logits(student_logits, labels, teacher_logits)
        loss = self.alpha * soft_kl(student_logits, teacher_logits, self.temperature)
        if self.alpha < 1.0:
            loss = loss + (1.0 - self.alpha) * masked_cross_entropy(student_logits, labels)
        return loss


@register_objective("kd_sum")
class SumKD:
    """Vanilla KD as the VanillaKD paper runs it (Hao et al. 2023): ``ce_weight * CE(y, s) + kd_weight * T^2 *
    KL(softmax(t/T) || softmax(s/T))`` with T = 1 and both weights 1 by default (the teacher sees the student's
    augmented input; that is the caller's job)."""

    def __init__(self, temperature: float = 1.0, kd_weight: float = 1.0, ce_weight: float = 1.0) -> None:
        if temperature <= 0 or kd_weight < 0 or ce_weight < 0:
            raise ValueError(f"need temperature > 0 and non-negative weights, got T={temperature}, kd_weight={kd_weight}, ce_weight={ce_weight}")
        self.temperature, self.kd_weight, self.ce_weight = temperature, kd_weight, ce_weight

    def __call__(self, student_logits, labels, teacher_logits):
        check_logits(student_logits, labels, teacher_logits)
        return self.kd_weight * soft_kl(student_logits, teacher_logits, self.temperature) + self.ce_weight * masked_cross_entropy(student_logits, labels)
