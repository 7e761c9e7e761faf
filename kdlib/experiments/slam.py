"""Notebook 02 (SLaM): the compared ways of learning from a noisy teacher's labels on the unlabelled pool.

Every method is a registered objective spec; all of them also fit the true labels of L. alpha(x) and k are
estimated on the validation set V only; the oracle reads U's true labels (an upper bound).
"""

from __future__ import annotations

import pandas as pd
import torch

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.slam import estimate_k, oracle_alpha, top_k_mask
from kdlib.experiments.unlabelled import THRESHOLDS, baseline_methods, oracle_correct
from kdlib.tasks import SemiSupervisedTask


def slam_method(task: SemiSupervisedTask) -> dict:
    """SLaM as run in notebook 02: soft teacher targets, isotonic alpha(x) and the global k, both fitted on V."""
    probs = task.teacher_unlabelled
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(probs)
    mask = top_k_mask(probs, estimate_k(task.teacher_val, task.y_val))
    return {"name": "slam", "alpha": task.on_training_set(alpha), "mask": task.on_training_set(mask)}


def methods(task: SemiSupervisedTask, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, dict]:
    """The baselines (labels only, hard / soft distillation, confidence thresholds), SLaM and its ablations."""
    slam = slam_method(task)
    probs = task.teacher_unlabelled
    n, c = probs.shape
    constant = task.on_training_set(torch.full((n,), task.teacher_accuracy("val")))
    return {
        **baseline_methods(thresholds),
        "SLaM": slam,
        "SLaM (normalised mix)": {**slam, "normalise": True},
        "SLaM, constant alpha": {**slam, "alpha": constant},
        "SLaM, k = C": {**slam, "mask": task.on_training_set(torch.ones(n, c))},
        "SLaM, oracle alpha": {**slam, "alpha": task.on_training_set(oracle_alpha(probs, task.y_unlabelled))},
    }


def calibration(task: SemiSupervisedTask, bins: int = 8) -> pd.DataFrame:
    """Estimated alpha(x) against the teacher's true accuracy on U, in bins of equal size by estimated alpha."""
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(task.teacher_unlabelled)
    frame = pd.DataFrame({"estimated": alpha.numpy(), "correct": oracle_correct(task).numpy()})
    frame["bin"] = pd.qcut(frame.estimated.rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(estimated=("estimated", "mean"), true=("correct", "mean"), examples=("correct", "size")).reset_index(drop=True)
    return out.assign(dataset=task.dataset, n_labelled=task.n_labelled)
