"""Decoupled knowledge distillation (DKD; Zhao et al., CVPR 2022), as the VanillaKD repository runs it.

KD's KL splits into a target-class term and a non-target term (the paper's Eq. 5):

    KL(p_t || p_s) = TCKD + (1 - p_t[y]) * NCKD,
    TCKD = KL([p_t[y], 1 - p_t[y]] || [p_s[y], 1 - p_s[y]]),   NCKD = KL(p_t[not y] || p_s[not y]) (renormalised),

and DKD weights the two independently: ``CE(y, s) + T^2 (alpha * TCKD + beta * NCKD)``, with the repository's
defaults alpha = 1, beta = 2, T = 1. Examples without a label (-1) use the teacher's argmax as their target class,
soft (mixed) labels their argmax, as the repository does under mixup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.kd import check_logits, label_cross_entropy, teacher_of
from kdlib.distill.registry import register_objective
from kdlib.train import Batch


MASKED = -1e9  # a logit whose probability is exactly 0 in float32


def _kl_rows(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """Row-wise KL(p || q) from log-probabilities."""
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def decoupled_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example (TCKD, NCKD) at ``temperature``."""
    s, t = student_logits / temperature, teacher_logits / temperature
    gt = F.one_hot(target, s.shape[1]).bool()
    binary = lambda z: torch.log(torch.stack([F.softmax(z, 1)[gt], 1 - F.softmax(z, 1)[gt]], 1).clamp_min(1e-12))  # noqa: E731
    others = lambda z: F.log_softmax(z.masked_fill(gt, MASKED), 1)  # noqa: E731  (the target class gets probability 0)
    return _kl_rows(binary(t), binary(s)), _kl_rows(others(t), others(s))


@register_objective("dkd")
class DecoupledKD:
    """Per example: ``ce_weight * CE(y, s) + T^2 * (alpha * TCKD + beta * NCKD)``."""

    def __init__(self, alpha: float = 1.0, beta: float = 2.0, temperature: float = 1.0, ce_weight: float = 1.0) -> None:
        if temperature <= 0 or alpha < 0 or beta < 0 or ce_weight < 0:
            raise ValueError(f"need temperature > 0 and non-negative weights, got T={temperature}, alpha={alpha}, beta={beta}, ce_weight={ce_weight}")
        self.alpha, self.beta, self.temperature, self.ce_weight = alpha, beta, temperature, ce_weight

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher, labels = teacher_of(batch), batch.labels
        check_logits(outputs, labels, teacher)
        target = labels.argmax(1) if labels.ndim == 2 else torch.where(labels >= 0, labels, teacher.argmax(1))
        tckd, nckd = decoupled_terms(outputs, teacher, target, self.temperature)
        loss = self.temperature**2 * (self.alpha * tckd + self.beta * nckd)
        return loss + self.ce_weight * label_cross_entropy(outputs, labels) if self.ce_weight else loss
