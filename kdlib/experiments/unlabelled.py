"""What notebooks 02 (SLaM) and 03 (weighted distillation) share: the sweep of tasks, the baselines for distilling on
a teacher-labelled pool U, the evaluation of a list of objectives on one task, the threshold chosen on validation,
and records.
"""

from __future__ import annotations

from typing import Callable, Iterator

import pandas as pd
import torch
from torch import nn

from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill.slam import oracle_alpha
from kdlib.profiles import pick
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.semisup import (
    SemiSupervisedStudent, SemiSupervisedTask, UnlabelledObjective, noisy_teacher_recipe, text_semisup_task, train_students, vision_semisup_task,
)
from kdlib.train import TrainConfig

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
    return vision_semisup_task(dataset, n_labelled, n_unlabelled=pool, seed=seed, n_validation=validation, recipe=noisy_teacher_recipe(dataset, profile))


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


def hard_labels(task: SemiSupervisedTask) -> torch.Tensor:
    """The teacher's argmax on U, one-hot (N_U, C)."""
    return nn.functional.one_hot(task.teacher_unlabelled.argmax(1), task.num_classes).float()


def oracle_correct(task: SemiSupervisedTask) -> torch.Tensor:
    """1 where the teacher's top-1 on U is right, else 0 (reads U's true labels: for oracles only)."""
    return oracle_alpha(task.teacher_unlabelled, task.y_unlabelled)


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
