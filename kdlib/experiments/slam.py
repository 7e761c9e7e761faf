"""Notebook 02 (SLaM): the compared ways of learning from a noisy teacher's labels on the unlabelled pool.

Every method is an :class:`~kdlib.semisup.UnlabelledObjective`; all of them also fit the true labels of L.
alpha(x) and k are estimated on the validation set V only; the oracle reads U's true labels (an upper bound).
"""

from __future__ import annotations

import pandas as pd
import torch

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.slam import estimate_k, oracle_alpha, top_k_mask
from kdlib.experiments.unlabelled import THRESHOLDS, baseline_objectives, oracle_correct
from kdlib.semisup import SemiSupervisedTask, UnlabelledObjective


def slam_objective(task: SemiSupervisedTask) -> UnlabelledObjective:
    """SLaM as run in notebook 02: soft teacher targets, isotonic alpha(x) and the global k, both fitted on V."""
    probs = task.teacher_unlabelled
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(probs)
    mask = top_k_mask(probs, estimate_k(task.teacher_val, task.y_val))
    return UnlabelledObjective("SLaM", probs, torch.ones(len(probs)), alpha, mask)


def objectives(task: SemiSupervisedTask, thresholds: tuple[float, ...] = THRESHOLDS) -> list[UnlabelledObjective]:
    """The baselines (labels only, hard / soft distillation, confidence thresholds), SLaM and its ablations."""
    slam = slam_objective(task)
    probs, alpha, mask = slam.targets, slam.alpha, slam.mask
    n, c = probs.shape
    ones = torch.ones(n)
    constant = torch.full((n,), task.teacher_accuracy("val"))
    return [
        *baseline_objectives(task, thresholds),
        slam,
        UnlabelledObjective("SLaM (normalised mix)", probs, ones, alpha, mask, normalise=True),
        UnlabelledObjective("SLaM, constant alpha", probs, ones, constant, mask),
        UnlabelledObjective("SLaM, k = C", probs, ones, alpha, torch.ones(n, c)),
        UnlabelledObjective("SLaM, oracle alpha", probs, ones, oracle_alpha(probs, task.y_unlabelled), mask),
    ]


def calibration(task: SemiSupervisedTask, bins: int = 8) -> pd.DataFrame:
    """Estimated alpha(x) against the teacher's true accuracy on U, in bins of equal size by estimated alpha."""
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(task.teacher_unlabelled)
    frame = pd.DataFrame({"estimated": alpha.numpy(), "correct": oracle_correct(task).numpy()})
    frame["bin"] = pd.qcut(frame.estimated.rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(estimated=("estimated", "mean"), true=("correct", "mean"), examples=("correct", "size")).reset_index(drop=True)
    return out.assign(dataset=task.dataset, n_labelled=task.n_labelled)
