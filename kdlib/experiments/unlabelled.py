"""What notebooks 02 (SLaM), 03 (weighted distillation) and 04 (RAD) share: the sweep of semi-supervised tasks, the
stacked students trained on L plus the teacher-labelled pool U, the baselines, the threshold chosen on validation,
and records.

A method is a registered objective spec (``{"name": "soft_distillation"}``, ``{"name": "slam", "alpha": ...}``);
per-example data in a spec (alpha, masks, weights, teacher errors) is aligned with the training set L then U
(:meth:`~kdlib.tasks.SemiSupervisedTask.on_training_set`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import pandas as pd
import torch

from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.distill.slam import oracle_alpha
from kdlib.distill.weighted import debiasing_weight, distortion
from kdlib.grid import run_grid
from kdlib.models import STUDENT_CNN, CNNConfig
from kdlib.models.stacked import StackedCNN, StackedMLP, StudentStack
from kdlib.models.token_cnn import StackedTokenCNN
from kdlib.models.vision import FlipCrop
from kdlib.profiles import pick
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.tasks import SemiSupervisedTask, text_semisup_task, vision_semisup_task
from kdlib.teachers import few_label_recipe
from kdlib.train import History, TrainConfig, TrainSet, accuracy, fit, predict_outputs, set_seed

STUDENTS_VERSION = 4
Methods = Mapping[str, Mapping]  # method name -> objective spec

THRESHOLDS = (0.6, 0.9)

# |L| per dataset, from a poor to a good teacher; the pool U (at least 4 |L|); the validation set V (500, as the papers)
SWEEPS = {
    "quick": {"fashion_mnist": (50, 100), "sst2": (30, 60)},
    "full": {"fashion_mnist": (100, 1000), "sst2": (30, 300)},
}
# SST-2's pool is 16,000 phrases: on 4,000 the token CNN, trained from scratch, stayed 9 pp below its frozen-encoder teacher
POOL = {"quick": {"fashion_mnist": 400, "sst2": 240}, "full": {"fashion_mnist": 4000, "cifar10": 4000, "sst2": 16000}}
VALIDATION = {"quick": 200, "full": 500}
TEST = {"quick": 1000, "full": None}  # test images per vision task (None: the whole test split)
TOKEN_CNN = (("embed_dim", 32), ("filters", 64), ("hidden", 32), ("kernel", 3))  # notebook 01's text student
# Per-student early stopping on V (patience a quarter of the schedule); the cosine schedule spans the planned epochs,
# about 1,300 updates on images and 2,500 on SST-2's larger pool in the full profile. The probe that chose them
# (benchmarks/student_schedule.py, Fashion-MNIST |L| = 100, seed 1000) of the 8/16 CNN: 12 epochs left soft distillation
# at 57.0 % against its teacher's 66.4 % and the corrected-label ceiling at 63.6 %; 40 epochs gave 64.8 % and 73.7 % (best
# steps 890-1,090 of 1,320). On SST-2 (|L| = 30, 16,000 phrases, 20 epochs) the token CNN's best steps were 380-760, and
# the stack stopped early after 1,386 of its 2,520 planned updates.
STUDENT_EPOCHS = {"quick": {"fashion_mnist": 2, "cifar10": 2, "sst2": 2}, "full": {"fashion_mnist": 40, "cifar10": 40, "sst2": 20}}
STUDENT_OPTIMISER = {"batch_size": 128, "lr": 3e-3, "weight_decay": 5e-4}


@dataclass(frozen=True)
class SemiSupervisedStudent:
    """A student of the harness and its optimisation: ``kind`` "cnn" (a small CNN on images, flip-crop batches when
    ``augment``), "token_cnn" (a 1-D CNN over word pieces) or "mlp" (one hidden layer, for feature rows and toys),
    with the sizes of that model."""

    kind: str
    train: TrainConfig
    sizes: tuple[tuple[str, Any], ...] = ()
    augment: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("cnn", "token_cnn", "mlp"):
            raise ValueError(f"student kind must be 'cnn', 'token_cnn' or 'mlp', got {self.kind!r}")

    def build(self, task: SemiSupervisedTask, count: int, seed: int) -> StudentStack:
        """``count`` freshly initialised students of this kind for ``task``, as one stack (the same initial weights)."""
        sizes = dict(self.sizes)
        if self.kind == "cnn":
            return StackedCNN(CNNConfig(in_channels=task.x_labelled.shape[1], num_classes=task.num_classes, **sizes), count, seed)
        if self.kind == "token_cnn":
            if task.vocabulary_size is None:
                raise ValueError(f"task {task.name!r} has no token vocabulary: a token-CNN student needs token-id inputs")
            return StackedTokenCNN(task.vocabulary_size, task.num_classes, [1] * count, seed, **sizes)
        return StackedMLP(task.x_labelled.shape[1], sizes.get("hidden", 64), task.num_classes, [1] * count, seed)

    def transforms(self) -> list:
        return [FlipCrop()] if self.augment else []


def fit_students(task: SemiSupervisedTask, student: SemiSupervisedStudent, objectives: list, train: TrainSet, seed: int) -> tuple[StudentStack, History]:
    """Train one student per objective on ``train`` as one stack (same initial weights and batches), each early-stopped
    on the task's V and restored to its best step."""
    set_seed(seed)
    model = student.build(task, len(objectives), seed)
    history = fit(model, objectives, train, config=student.train, seed=seed, val=(task.x_val, task.y_val), transforms=student.transforms(),
                  progress=False)
    return model, history


def train_students(task: SemiSupervisedTask, methods: Methods, seed: int, student: SemiSupervisedStudent, cache: Cache | None = None) -> list[dict]:
    """Train one student per method on L ∪ U as one stack (same initialisation and batches); cached.

    Returns one row per method: its name, best validation accuracy, test accuracy, the best step and the steps run
    (and, for the ``distortion_weighted_distillation`` (R2) methods, ``unlabelled_weights``: the R2 weights on U under the final
    student).
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
        model, history = fit_students(task, student, [get_objective(**methods[n]) for n in names], train, seed)
        test = accuracy(model, task.x_test, task.y_test)
        rows = [{"method": n, "val_accuracy": float(history.best_val_accuracy[m]), "test_accuracy": float(test[m]),
                 "best_step": int(history.best_step[m]), "steps": int(history.steps)} for m, n in enumerate(names)]
        r2 = [m for m, n in enumerate(names) if methods[n]["name"] == "distortion_weighted_distillation"]
        if r2:
            ratio = distortion(predict_outputs(model, task.x_unlabelled)[r2], task.teacher_unlabelled)
            for j, m in enumerate(r2):
                rows[m]["unlabelled_weights"] = debiasing_weight(methods[names[m]]["teacher_error"][n_l:], ratio[j])
        return rows

    return (cache or Cache()).get_or_compute("semisup_students", key, compute)


def sweeps(profile: str) -> dict[str, tuple[int, ...]]:
    """The labelled-set sizes |L| of each dataset in ``profile``."""
    return pick(profile, SWEEPS)


def student(profile: str, dataset: str) -> SemiSupervisedStudent:
    """The student of ``dataset`` in ``profile``: the small CNN (8/16 channels) on images, with flip-crop batches on
    CIFAR-10; notebook 01's token CNN on SST-2."""
    epochs = pick(profile, STUDENT_EPOCHS)[dataset]
    train = TrainConfig(epochs=epochs, patience=max(2, epochs // 4), cosine=True, **STUDENT_OPTIMISER)
    if dataset == "sst2":
        return SemiSupervisedStudent("token_cnn", train, TOKEN_CNN)
    return SemiSupervisedStudent("cnn", train, tuple(STUDENT_CNN.items()), augment=dataset == "cifar10")


def make_task(dataset: str, n_labelled: int, seed: int, profile: str) -> SemiSupervisedTask:
    """The (dataset, |L|, seed) task of ``profile``: split, noisy teacher (cached) and student inputs."""
    pool, validation = pick(profile, POOL)[dataset], pick(profile, VALIDATION)
    if pool < 4 * n_labelled:
        raise ValueError(f"{dataset}: the pool |U| = {pool} must be at least 4 |L| = {4 * n_labelled}")
    if dataset == "sst2":
        return text_semisup_task(dataset, n_labelled, n_unlabelled=pool, seed=seed, profile=profile, n_validation=validation)
    return vision_semisup_task(dataset, n_labelled, n_unlabelled=pool, seed=seed, n_validation=validation, recipe=few_label_recipe(dataset, profile),
                               n_test=pick(profile, TEST))


def evaluate_cell(dataset: str, n_labelled: int, seed: int, profile: str, methods_from: str, keep: list[str] | None = None) -> list[dict]:
    """A grid cell: every method of the module ``methods_from`` (its ``methods(task)``; only those named in ``keep`` if
    given) on one (dataset, |L|, seed) task, one stack of students, plus the teacher as a row."""
    chosen = importlib.import_module(methods_from).methods
    if keep is not None:
        chosen = _only(chosen, keep)
    task = make_task(dataset, n_labelled, seed, profile)
    return evaluate(task, chosen, student(profile, dataset))


def _only(methods: Callable[[SemiSupervisedTask], Methods], keep: list[str]) -> Callable[[SemiSupervisedTask], Methods]:
    def chosen(task: SemiSupervisedTask) -> dict:
        every = methods(task)
        missing = [m for m in keep if m not in every]
        if missing:
            raise ValueError(f"unknown methods {missing}; available: {sorted(every)}")
        return {m: every[m] for m in keep}

    return chosen


def run_sweep(profile: str, seeds: list[int] | range | tuple[int, ...], methods_from: str, experiment: str,
              datasets: Mapping[str, tuple[int, ...]] | None = None, keep: list[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """Every (dataset, |L|, seed) cell of the sweep (``datasets``: |L| per dataset, default the profile's sweep; ``keep``:
    only these methods) through :func:`kdlib.grid.run_grid`."""
    grid = datasets or sweeps(profile)
    cells = [{"dataset": d, "n_labelled": int(n), "seed": int(s), "profile": profile, "methods_from": methods_from, "keep": keep}
             for d, sizes in grid.items() for n in sizes for s in seeds]
    return run_grid(evaluate_cell, experiment=experiment, cells=cells, context=sweep_context(methods_from), progress=progress)


def sweep_context(methods_from: str) -> dict:
    """What a sweep's cells depend on beyond their arguments: the students' version and, where the module of the
    methods declares them (``METHODS``), their names, so that a changed stack is not served from the cache."""
    declared = getattr(importlib.import_module(methods_from), "METHODS", None)
    return {"version": STUDENTS_VERSION} | ({"methods": list(declared)} if declared is not None else {})


def noisiest(profile: str) -> dict[str, tuple[int, ...]]:
    """The smallest |L| (the noisiest teacher) of each dataset of ``profile``."""
    return {dataset: sizes[:1] for dataset, sizes in sweeps(profile).items()}


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
    return experiment_names({dataset: picks[which](sizes) for dataset, sizes in grid.items()})


def experiment_names(sweep: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Experiment names ``"<dataset> |L|=<n>"`` of a sweep (|L| per dataset), in its order."""
    return [f"{dataset} |L|={n}" for dataset, sizes in sweep.items() for n in sizes]


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
    rows.append({"method": "teacher", "val_accuracy": task.teacher_accuracy("val"), "test_accuracy": task.teacher_accuracy("test"),
                 **{f"teacher_{k}": v for k, v in task.teacher_training.items()}})
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
