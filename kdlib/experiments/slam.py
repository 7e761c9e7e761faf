"""Notebook 02 (SLaM): the compared ways of learning from a noisy teacher's labels on the unlabelled pool.

Every method is an :class:`~kdlib.semisup.UnlabelledObjective`; all of them also fit the true labels of L.
alpha(x) and k are estimated on the validation set V only; the oracle reads U's true labels (an upper bound).
"""

from __future__ import annotations

import torch
from torch import nn

from kdlib.distill.slam import CorrectnessCalibration, estimate_k, oracle_alpha, top_k_mask
from kdlib.semisup import SemiSupervisedTask, UnlabelledObjective

THRESHOLDS = (0.5, 0.7, 0.9)


def objectives(task: SemiSupervisedTask, thresholds: tuple[float, ...] = THRESHOLDS) -> list[UnlabelledObjective]:
    """Labels only, hard / soft distillation, confidence thresholding (one per threshold), SLaM and its ablations."""
    probs = task.teacher_unlabelled
    n, c = probs.shape
    hard = nn.functional.one_hot(probs.argmax(1), c).float()
    ones, zeros = torch.ones(n), torch.zeros(n)
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(probs)
    k = estimate_k(task.teacher_val, task.y_val)
    mask = top_k_mask(probs, k)
    constant = torch.full((n,), task.teacher_accuracy("val"))
    slam = [
        UnlabelledObjective("SLaM", probs, ones, alpha, mask),
        UnlabelledObjective("SLaM (normalised mix)", probs, ones, alpha, mask, normalise=True),
        UnlabelledObjective("SLaM, constant alpha", probs, ones, constant, mask),
        UnlabelledObjective("SLaM, k = C", probs, ones, alpha, torch.ones(n, c)),
        UnlabelledObjective("SLaM, oracle alpha", probs, ones, oracle_alpha(probs, task.y_unlabelled), mask),
    ]
    confidence = probs.max(1).values
    return [
        UnlabelledObjective("labels only", probs, zeros),
        UnlabelledObjective("hard distillation", hard, ones),
        UnlabelledObjective("soft distillation", probs, ones),
        *[UnlabelledObjective(f"threshold {t:g}", hard, (confidence >= t).float()) for t in thresholds],
        *slam,
    ]
