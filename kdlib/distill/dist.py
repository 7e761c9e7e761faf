"""DIST (Huang et al., NeurIPS 2022): distil the teacher's relations, not its exact probabilities.

With p = softmax(z / tau), DIST matches Pearson correlations instead of a KL:

    inter = mean_i (1 - pearson(p_s[i, :], p_t[i, :]))     (each example's ranking of the classes)
    intra = mean_c (1 - pearson(p_s[:, c], p_t[:, c]))     (each class's ranking of the batch's examples)
    loss  = ce_weight * CE(y, s) + tau^2 * (beta * inter + gamma * intra)

with the VanillaKD repository's defaults beta = gamma = 1, tau = 1. Identical logits give zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.kd import check_logits, masked_cross_entropy
from kdlib.distill.registry import register_objective


def pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


@register_objective("dist")
class DIST:
    """``ce_weight * CE(y, s) + tau^2 * (beta * inter-class + gamma * intra-class relation loss)``."""

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, temperature: float = 1.0, ce_weight: float = 1.0) -> None:
        if temperature <= 0 or beta < 0 or gamma < 0 or ce_weight < 0:
            raise ValueError(f"need temperature > 0 and non-negative weights, got tau={temperature}, beta={beta}, gamma={gamma}, ce_weight={ce_weight}")
        self.beta, self.gamma, self.temperature, self.ce_weight = beta, gamma, temperature, ce_weight

    def __call__(self, student_logits, labels, teacher_logits):
        check_logits(student_logits, labels, teacher_logits)
        p_s = F.softmax(student_logits / self.temperature, 1)
        p_t = F.softmax(teacher_logits / self.temperature, 1)
        inter = (1 - pearson_rows(p_s, p_t)).mean()
        intra = (1 - pearson_rows(p_s.T, p_t.T)).mean()
        loss = self.temperature**2 * (self.beta * inter + self.gamma * intra)
        return loss + self.ce_weight * masked_cross_entropy(student_logits, labels) if self.ce_weight else loss
