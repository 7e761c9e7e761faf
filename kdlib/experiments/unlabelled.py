"""What notebooks 02 (SLaM), 03 (weighted distillation) and 04 (RAD) share: the sweep of semi-supervised tasks, the
stacked students trained on L plus the teacher-labelled pool U, the baselines, the threshold chosen on validation,
and records.

A method is a registered objective spec (``{"name": "soft_distillation"}``, ``{"name": "slam", "alpha": ...}``);
per-example data in a spec (alpha, masks, weights, teacher errors) is aligned with the training set L then U
(:meth:`~kdlib.tasks.SemiSupervisedTask.on_training_set`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import pandas as pd
import torch

from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.distill.slam import oracle_alpha
from kdlib.distill.weighted import debiasing_weight, distortion
from kdlib.models.stacked import StackedMLP
from kdlib.profiles import pick
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.tasks import SemiSupervisedTask, text_semisup_task, vision_semisup_task
from kdlib.teachers import few_label_recipe
from kdlib.train import TrainConfig, accuracy, fit, predict_outputs, set_seed

STUDENTS_VERSION = 2
Methods = Mapping[str, Mapping]  # method name -> objective spec

THRESHOLDS = (0.5, 0.7, 0.9)

# |L| per dataset, from a poor to a good teacher; the pool U; the validation set V (chosen in notebook 02's regime study)
SWEEPS = {
    "quick": {"fashion_mnist": (100, 300), "sst2": (30, 100)},
    "full": {"fashion_mnist": (100, 300, 1000), "cifar10": (1000, 4000, 12000), "sst2": (30, 100, 500)},
}
POOL = {"quick": {"fashion_mnist": 1500, "sst2": 300}, "full": {"fashion_mnist": 15000, "cifar10": 8000, "sst2": 15000}}
VALIDATION = {"quick": 200, "full": 500}
STUDENT_TRAINING = {
    "quick": TrainConfig(epochs=6, batch_size=256, lr=3e-3, patience=3, cosine=True),
    "full": TrainConfig(epochs=30, batch_size=256, lr=3e-3, patience=5, cosine=True),
}


@dataclass(frozen=True)
class SemiSupervisedStudent:
    """The MLP student on the task's inputs (one hidden layer) and its optimisation."""

    hidden: int
    train: TrainConfig


def train_students(task: SemiSupervisedTask, methods: Methods, seed: int, student: SemiSupervisedStudent, cache: Cache | None = None) -> list[dict]:
    """Train one student per method on L ∪ U as one stack (same initialisation and batches); cached.

    Returns one row per method: its name, best validation accuracy and test accuracy (and, for the
    ``debiased_distillation`` methods, ``unlabelled_weights``: the debiasing weights on U under the final student).
    """
    if not methods:
        raise ValueError("no methods to train")
    train = task.training_set()
    n_l = len(task.y_labelled)
    for name, spec in methods.items():
        for key, value in spec.items():
            if isinstance(value, torch.Tensor) and len(value) != len(train.labels):
                raise ValueError(f"method {name!r}: {key} must be aligned with the {len(train.labels)} training examples (L then U), got {len(value)}")
    key = {"task": task.fingerprint(), "methods": {k: dict(v) for k, v in methods.items()}, "seed": seed, "student": student, "version": STUDENTS_VERSION}

    def compute() -> list[dict]:
        names = list(methods)
        set_seed(seed)
        model = StackedMLP(train.inputs.x.shape[1], student.hidden, task.num_classes, [1] * len(names), seed)
        history = fit(model, [get_objective(**methods[n]) for n in names], train, config=student.train, seed=seed, val=(task.x_val, task.y_val),
                      progress=False)
        test = accuracy(model, task.x_test, task.y_test)
        rows = [{"method": n, "val_accuracy": float(history.best_val_accuracy[m]), "test_accuracy": float(test[m])} for m, n in enumerate(names)]
        debiased = [m for m, n in enumerate(names) if methods[n]["name"] == "debiased_distillation"]
        if debiased:
            ratio = distortion(predict_outputs(model, task.x_unlabelled)[debiased], task.teacher_unlabelled)
            for j, m in enumerate(debiased):
                rows[m]["unlabelled_weights"] = debiasing_weight(methods[names[m]]["teacher_error"][n_l:], ratio[j])
        return rows

    return (cache or Cache()).get_or_compute("semisup_students", key, compute)


def sweeps(profile: str) -> dict[str, tuple[int, ...]]:
    """The labelled-set sizes |L| of each dataset in ``profile``."""
    return pick(profile, SWEEPS)


def student(profile: str) -> SemiSupervisedStudent:
    """The one-hidden-layer (64 units) MLP student and its training in ``profile``."""
    return SemiSupervisedStudent(hidden=64, train=pick(profile, STUDENT_TRAINING))


def make_task(dataset: str, n_labelled: int, seed: int, profile: str) -> SemiSupervisedTask:
    """The (dataset, |L|, seed) task of ``profile``: split, noisy teacher (cached) and student inputs."""
    pool, validation = pick(profile, POOL)[dataset], pick(profile, VALIDATION)
    if dataset == "sst2":
        return text_semisup_task(dataset, n_labelled, n_unlabelled=pool, seed=seed, profile=profile, n_validation=validation)
    return vision_semisup_task(dataset, n_labelled, n_unlabelled=pool, seed=seed, n_validation=validation, recipe=few_label_recipe(dataset, profile))


def tasks(profile: str, seeds: list[int]) -> Iterator[SemiSupervisedTask]:
    """Every task of the sweep, dataset by dataset, |L| by |L|, seed by seed (with a progress bar)."""
    grid = [(dataset, n, seed) for dataset, sizes in sweeps(profile).items() for n in sizes for seed in seeds]
    for dataset, n, seed in tqdm(grid, desc="tasks"):
        yield make_task(dataset, n, seed, profile)


def experiments(profile: str, which: str = "all") -> list[str]:
    """Experiment names ``"<dataset> |L|=<n>"`` in sweep order: ``"all"``, or each dataset's ``"noisiest"`` or ``"cleanest"``."""
    grid = sweeps(profile)
    picks = {"all": lambda sizes: sizes, "noisiest": lambda sizes: sizes[:1], "cleanest": lambda sizes: sizes[-1:]}
    if which not in picks:
        raise ValueError(f"which must be one of {sorted(picks)}, got {which!r}")
    return [f"{dataset} |L|={n}" for dataset, sizes in grid.items() for n in picks[which](sizes)]


def oracle_correct(task: SemiSupervisedTask) -> torch.Tensor:
    """1 where the teacher's top-1 on U is right, else 0 (reads U's true labels: for oracles only)."""
    return oracle_alpha(task.teacher_unlabelled, task.y_unlabelled)


def baseline_methods(thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, dict]:
    """Labels only, hard and soft distillation, and confidence thresholding (one method per threshold)."""
    return {
        "labels only": {"name": "ce"},
        "hard distillation": {"name": "hard_distillation"},
        "soft distillation": {"name": "soft_distillation"},
        **{f"threshold {t:g}": {"name": "confidence_threshold", "threshold": t} for t in thresholds},
    }


def evaluate(task: SemiSupervisedTask, methods: Callable[[SemiSupervisedTask], Methods], student: SemiSupervisedStudent, cache: Cache | None = None) -> list[dict]:
    """Every method's student on ``task`` (its seed), plus the teacher itself as a row."""
    rows = train_students(task, methods(task), task.seed, student, cache)
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
