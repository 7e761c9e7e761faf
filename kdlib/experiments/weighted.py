"""Notebook 03 (weighted distillation): per-example weights on the teacher-labelled pool, and their diagnostics.

Every method is a registered objective spec; all of them also fit the true labels of L. The
teacher-error estimate p(x) is fitted on the validation set V only; the oracle weights read U's true labels.
"""

from __future__ import annotations

import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from kdlib.cache import Cache
from kdlib.distill.correctness import top1_margin
from kdlib.distill.weighted import correctness_weight, teacher_error
from kdlib.experiments import unlabelled
from kdlib.experiments.slam import slam_method
from kdlib.experiments.unlabelled import SemiSupervisedStudent
from kdlib.tasks import SemiSupervisedTask

WEIGHTED = {"hard": "weighted hard", "soft": "weighted soft"}  # R2, the main method
R1 = {"hard": "weighted hard, R1 (1 - p)", "soft": "weighted soft, R1 (1 - p)"}
CONSTANT = {"hard": "constant weight, hard", "soft": "constant weight, soft"}
ORACLE = {"hard": "oracle weights, hard", "soft": "oracle weights, soft"}
UNWEIGHTED = {"hard": "hard distillation", "soft": "soft distillation"}


def methods(task: SemiSupervisedTask, thresholds: tuple[float, ...] = unlabelled.THRESHOLDS) -> dict[str, dict]:
    """Baselines, weighted distillation (R2) and its ablations (R1, a constant weight, oracle weights), hard and
    soft, and SLaM as run in notebook 02."""
    error = teacher_error(task.teacher_val, task.y_val, task.teacher_unlabelled)
    r1 = correctness_weight(error)
    weights = [
        (R1, r1),
        (CONSTANT, torch.full_like(r1, r1.mean().item())),  # the same mean weight as R1, on every example
        (ORACLE, unlabelled.oracle_correct(task)),
    ]
    out = unlabelled.baseline_methods(thresholds)
    for kind in ("hard", "soft"):
        out[WEIGHTED[kind]] = {"name": "debiased_distillation", "teacher_error": task.on_training_set(error, 0.0), "target": kind}
        for names, w in weights:
            out[names[kind]] = {"name": "weighted_distillation", "weights": task.on_training_set(w), "target": kind}
    return {**out, "SLaM": slam_method(task)}


def evaluate(task: SemiSupervisedTask, student: SemiSupervisedStudent, cache: Cache | None = None) -> tuple[list[dict], pd.DataFrame]:
    """Every method's student on ``task`` and, per example of U, the weights each weighting gave it."""
    rows = unlabelled.evaluate(task, methods, student, cache)
    final = {r["method"]: r.pop("unlabelled_weights") for r in rows if "unlabelled_weights" in r}
    return rows, weights_on_pool(task, final)


def weights_on_pool(task: SemiSupervisedTask, final_weights: dict[str, torch.Tensor]) -> pd.DataFrame:
    """One row per example of U: the teacher's margin, whether it is right, the R1 weight and the final R2 weights."""
    error = teacher_error(task.teacher_val, task.y_val, task.teacher_unlabelled)
    frame = pd.DataFrame({
        "teacher margin": top1_margin(task.teacher_unlabelled).numpy(),
        "teacher right": unlabelled.oracle_correct(task).bool().numpy(),
        "R1 (1 - p)": correctness_weight(error).numpy(),
        **{f"R2 ({name})": weights.numpy() for name, weights in final_weights.items()},
    })
    return frame.assign(dataset=task.dataset, n_labelled=task.n_labelled, seed=task.seed)


def weight_separation(pool: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, |L|) and weighting: the mean weight on right and on wrong teacher labels, and the AUC of the
    weight as a detector of right labels (0.5: no better than a constant weight), averaged over seeds."""
    weightings = [c for c in pool.columns if c.startswith(("R1", "R2"))]
    rows = []
    for (dataset, n_labelled, seed), group in pool.groupby(["dataset", "n_labelled", "seed"], sort=False):
        right = group["teacher right"]
        for weighting in weightings:
            w = group[weighting]
            rows.append({
                "dataset": dataset, "n_labelled": n_labelled, "seed": seed, "weighting": weighting,
                "mean weight, teacher right": w[right].mean(), "mean weight, teacher wrong": w[~right].mean(),
                "AUC (right vs wrong)": roc_auc_score(right, w) if 0 < right.mean() < 1 else float("nan"),
            })
    return pd.DataFrame(rows).groupby(["dataset", "n_labelled", "weighting"], sort=False).mean(numeric_only=True).drop(columns="seed")
