"""Notebook 02 (SLaM): the compared ways of learning from a noisy teacher's labels on the unlabelled pool.

Every method is an :class:`~kdlib.semisup.UnlabelledObjective`; all of them also fit the true labels of L.
alpha(x) and k are estimated on the validation set V only; the oracle reads U's true labels (an upper bound).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from kdlib.cache import Cache
from kdlib.distill.slam import CorrectnessCalibration, estimate_k, oracle_alpha, top_k_mask
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.semisup import SemiSupervisedStudent, SemiSupervisedTask, UnlabelledObjective, train_students

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


def evaluate(task: SemiSupervisedTask, student: SemiSupervisedStudent, cache: Cache | None = None) -> list[dict]:
    """Every method's student on ``task`` (its seed), plus the teacher itself as a row."""
    rows = train_students(task, objectives(task), task.seed, student, cache)
    rows.append({"method": "teacher", "val_accuracy": task.teacher_accuracy("val"), "test_accuracy": task.teacher_accuracy("test")})
    return [dict(r, dataset=task.dataset, n_labelled=task.n_labelled, seed=task.seed) for r in rows]


def select_threshold(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace the per-threshold rows by one "confidence threshold" method: per (dataset, |L|), the threshold with
    the best validation accuracy averaged over seeds."""
    is_threshold = frame.method.str.startswith("threshold ")
    thresholds = frame[is_threshold]
    mean_val = thresholds.groupby(["dataset", "n_labelled", "method"])["val_accuracy"].mean().reset_index()
    best = mean_val.loc[mean_val.groupby(["dataset", "n_labelled"])["val_accuracy"].idxmax(), ["dataset", "n_labelled", "method"]]
    chosen = thresholds.merge(best, on=["dataset", "n_labelled", "method"]).assign(method="confidence threshold")
    return pd.concat([frame[~is_threshold], chosen], ignore_index=True)


def to_records(frame: pd.DataFrame) -> list[Record]:
    """Records with ``experiment = "<dataset> |L|=<n>"`` (seeds pair across methods within an experiment)."""
    return [
        Record(f"{row.dataset} |L|={row.n_labelled}", row.method, "-", int(row.seed), metric, float(getattr(row, metric)))
        for row in frame.itertuples()
        for metric in ("test_accuracy", "val_accuracy")
    ]


def calibration(task: SemiSupervisedTask, bins: int = 8) -> pd.DataFrame:
    """Estimated alpha(x) against the teacher's true accuracy on U, in bins of equal size by estimated alpha."""
    alpha = CorrectnessCalibration(task.teacher_val, task.y_val)(task.teacher_unlabelled)
    correct = (task.teacher_unlabelled.argmax(1) == task.y_unlabelled).float()
    frame = pd.DataFrame({"estimated": alpha.numpy(), "correct": correct.numpy()})
    frame["bin"] = pd.qcut(frame.estimated.rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(estimated=("estimated", "mean"), true=("correct", "mean"), examples=("correct", "size")).reset_index(drop=True)
    return out.assign(dataset=task.dataset, n_labelled=task.n_labelled)


def gain_change(accuracy: pd.DataFrame, noisy: list[str], clean: list[str], a: str = "SLaM", b: str = "soft distillation") -> dict:
    """Change of the paired gain ``a - b`` from the ``noisy`` to the ``clean`` experiments, with a Welch 95% CI."""
    change = welch_difference(per_seed_differences(accuracy, a, b, noisy), per_seed_differences(accuracy, a, b, clean))
    return {"change": change["difference"], "ci_low": change["ci_low"], "ci_high": change["ci_high"]}
