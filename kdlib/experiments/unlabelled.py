"""What notebooks 02 (SLaM) and 03 (weighted distillation) share: the baselines for distilling on a teacher-labelled
pool U, the evaluation of a list of objectives on one task, the threshold chosen on validation, and records.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch import nn

from kdlib.cache import Cache
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.semisup import SemiSupervisedStudent, SemiSupervisedTask, UnlabelledObjective, train_students

THRESHOLDS = (0.5, 0.7, 0.9)


def hard_labels(task: SemiSupervisedTask) -> torch.Tensor:
    """The teacher's argmax on U, one-hot (N_U, C)."""
    return nn.functional.one_hot(task.teacher_unlabelled.argmax(1), task.num_classes).float()


def oracle_correct(task: SemiSupervisedTask) -> torch.Tensor:
    """1 where the teacher's top-1 on U is right, else 0 (reads U's true labels: for oracles only)."""
    return (task.teacher_unlabelled.argmax(1) == task.y_unlabelled).float()


def baseline_objectives(task: SemiSupervisedTask, thresholds: tuple[float, ...] = THRESHOLDS) -> list[UnlabelledObjective]:
    """Labels only, hard and soft distillation, and confidence thresholding (one objective per threshold)."""
    probs = task.teacher_unlabelled
    n = len(probs)
    hard = hard_labels(task)
    confidence = probs.max(1).values
    return [
        UnlabelledObjective("labels only", probs, torch.zeros(n)),
        UnlabelledObjective("hard distillation", hard, torch.ones(n)),
        UnlabelledObjective("soft distillation", probs, torch.ones(n)),
        *[UnlabelledObjective(f"threshold {t:g}", hard, (confidence >= t).float()) for t in thresholds],
    ]


def evaluate(
    task: SemiSupervisedTask,
    objectives: Callable[[SemiSupervisedTask], list[UnlabelledObjective]],
    student: SemiSupervisedStudent,
    cache: Cache | None = None,
) -> list[dict]:
    """Every objective's student on ``task`` (its seed), plus the teacher itself as a row."""
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


def gain_change(accuracy: pd.DataFrame, noisy: list[str], clean: list[str], a: str, b: str) -> dict:
    """Change of the paired gain ``a - b`` from the ``noisy`` to the ``clean`` experiments, with a Welch 95% CI."""
    change = welch_difference(per_seed_differences(accuracy, a, b, noisy), per_seed_differences(accuracy, a, b, clean))
    return {"change": change["difference"], "ci_low": change["ci_low"], "ci_high": change["ci_high"]}
