"""Notebook 02 (SLaM): the compared ways of learning from a noisy teacher's labels on the unlabelled pool.

Every method is a registered objective spec; all of them also fit the true labels of L. alpha(x) and k are
estimated on the validation set V only. Two students read U's true labels and are marked as such: the ceiling
(:func:`corrected_targets`: the teacher's label where it is right, the true label where it is wrong) and today's
oracle-alpha SLaM (a control: alpha = 0 on a wrong label pushes the mass to the rest of the top k, where the truth
need not be).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.slam import VALID_ALPHA, estimate_k, oracle_alpha, top_k_mask
from kdlib.experiments.unlabelled import THRESHOLDS, baseline_methods, oracle_correct
from kdlib.tasks import SemiSupervisedTask

CEILING = "corrected labels (ceiling)"
ORACLE_ALPHA = "SLaM, oracle alpha"
MULTICLASS_ONLY = ("SLaM (normalised mix)", "SLaM, k = C")  # identical to SLaM with two classes (k = C = 2, k - 1 = 1)


def estimated_alpha(task: SemiSupervisedTask) -> torch.Tensor:
    """alpha(x) on U: isotonic P(teacher right | its top-1 margin), fitted on V, restricted to [VALID_ALPHA, 1]."""
    return CorrectnessCalibration(task.teacher_val, task.y_val, floor=VALID_ALPHA)(task.teacher_unlabelled)


def slam_method(task: SemiSupervisedTask) -> dict:
    """SLaM as run in notebook 02: soft teacher targets, isotonic alpha(x) in the valid range and the global k, both
    fitted on V."""
    mask = top_k_mask(task.teacher_unlabelled, estimate_k(task.teacher_val, task.y_val))
    return {"name": "slam", "alpha": task.on_training_set(estimated_alpha(task)), "mask": task.on_training_set(mask)}


def corrected_targets(task: SemiSupervisedTask) -> torch.Tensor:
    """Per example of U: the teacher's probabilities where its top-1 is right, the one-hot true label where it is
    wrong (reads U's truth: the ceiling of any correction of the teacher's labels)."""
    right = oracle_correct(task).bool()[:, None]
    return torch.where(right, task.teacher_unlabelled, F.one_hot(task.y_unlabelled, task.num_classes).float())


def methods(task: SemiSupervisedTask, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, dict]:
    """The baselines (labels only, hard / soft distillation, confidence thresholds), SLaM, its ablations (the
    normalised mix and k = C on multi-class tasks only), the ceiling and the oracle-alpha control."""
    slam = slam_method(task)
    probs = task.teacher_unlabelled
    n, c = probs.shape
    constant = task.on_training_set(torch.full((n,), max(VALID_ALPHA, task.teacher_accuracy("val"))))
    labelled_targets = F.one_hot(task.y_labelled, c).float()
    out = {
        **baseline_methods(thresholds),
        "SLaM": slam,
        "SLaM (normalised mix)": {**slam, "normalise": True},
        "SLaM, constant alpha": {**slam, "alpha": constant},
        "SLaM, k = C": {**slam, "mask": task.on_training_set(torch.ones(n, c))},
        ORACLE_ALPHA: {**slam, "alpha": task.on_training_set(oracle_alpha(probs, task.y_unlabelled))},
        CEILING: {"name": "target_distillation", "targets": torch.cat([labelled_targets, corrected_targets(task)])},
    }
    return {k: v for k, v in out.items() if c > 2 or k not in MULTICLASS_ONLY}


def calibration(task: SemiSupervisedTask, bins: int = 8) -> pd.DataFrame:
    """Estimated alpha(x) against the teacher's true accuracy on U, in bins of equal size by estimated alpha, and the
    share of U below the valid range before the restriction."""
    raw = CorrectnessCalibration(task.teacher_val, task.y_val)(task.teacher_unlabelled)
    alpha = raw.clamp_min(VALID_ALPHA)
    frame = pd.DataFrame({"estimated": alpha.numpy(), "correct": oracle_correct(task).numpy()})
    frame["bin"] = pd.qcut(frame.estimated.rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(estimated=("estimated", "mean"), true=("correct", "mean"), examples=("correct", "size")).reset_index(drop=True)
    return out.assign(dataset=task.dataset, n_labelled=task.n_labelled, below_valid=float((raw < VALID_ALPHA).float().mean()))
