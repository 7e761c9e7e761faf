"""DIST (Huang et al., NeurIPS 2022): distil the teacher's relations, not its exact probabilities.

With p = softmax(z / tau), DIST matches Pearson correlations instead of a KL:

    inter = mean_i (1 - pearson(p_s[i, :], p_t[i, :]))     (each example's ranking of the classes)
    intra = mean_c (1 - pearson(p_s[:, c], p_t[:, c]))     (each class's ranking of the batch's examples)
    loss  = ce_weight * CE(y, s) + tau^2 * (beta * inter + gamma * intra)

with the VanillaKD repository's defaults beta = gamma = 1, tau = 1. Identical logits give zero. The intra-class term
is a property of the whole batch; per example it is the same share of it, so the batch mean is the loss above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib.distill.kd import check_logits, label_cross_entropy, teacher_of
from kdlib.distill.registry import register_objective
from kdlib.train import Batch


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

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher, labels = teacher_of(batch), batch.labels
        check_logits(outputs, labels, teacher)
        p_s = F.softmax(outputs / self.temperature, 1)
        p_t = F.softmax(teacher / self.temperature, 1)
        inter = 1 - pearson_rows(p_s, p_t)  # (B,)
        intra = (1 - pearson_rows(p_s.T, p_t.T)).mean()  # one value for the batch
        loss = self.temperature**2 * (self.beta * inter + self.gamma * intra)
        return loss + self.ce_weight * label_cross_entropy(outputs, labels) if self.ce_weight else loss
