"""Notebook 05 (vanilla KD at scale): one teacher / student pair, distilled by several objectives while the training
data, the augmentation recipe and the training length vary.

Per (dataset, fraction, recipe, seed) every method's student trains in one stacked CNN on the same augmented (and
mixed) batches, which the teacher also sees ("consistent teaching", as in the VanillaKD repository). The learning
rate is constant, so the test accuracy recorded after s steps is exactly that of a run of length s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.data import load, semi_supervised_split
from kdlib.distill import get_objective
from kdlib.models import STUDENT_CNN, CNNConfig
from kdlib.models.stacked import StackedCNN
from kdlib.models.vision import FlipCrop, MixupCutmix
from kdlib.profiles import pick
from kdlib.results import PairedComparison, Record, paired_comparison
from kdlib.teachers import Teacher, image_inputs, teacher_logits, vision_teacher
from kdlib.train import TrainConfig, TrainSet, fit, set_seed

SCALING_VERSION = 3


@dataclass(frozen=True)
class Recipe:
    """How each training batch is augmented: flip + padded crop, then (``mix``) Mixup or CutMix."""

    name: str
    flip_crop: bool
    mix: bool


RECIPES = {
    "none": Recipe("none", flip_crop=False, mix=False),
    "standard": Recipe("standard", flip_crop=True, mix=False),
    "strong": Recipe("strong", flip_crop=True, mix=True),
}

# name -> (registered objective, parameters): the VanillaKD repository's defaults, fixed in advance
METHODS = {
    "CE only": ("ce", {}),
    "vanilla KD": ("kd_sum", {}),
    "DKD": ("dkd", {}),
    "DIST": ("dist", {}),
}


@dataclass(frozen=True)
class ScalingRun:
    """The student architecture and its optimisation: AdamW at a constant rate, test accuracy after each of ``evals`` steps."""

    evals: tuple[int, ...]
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = STUDENT_CNN["widths"]
    embed_dim: int = STUDENT_CNN["embed_dim"]

    def __post_init__(self) -> None:
        if not self.evals or min(self.evals) < 1 or list(self.evals) != sorted(set(self.evals)):
            raise ValueError(f"evals must be increasing positive step counts, got {self.evals}")


@dataclass(frozen=True)
class ScalingProtocol:
    """The grid of one profile: every (training fraction, recipe) point of every dataset, each seed, one run."""

    datasets: tuple[str, ...]
    points: tuple[tuple[float, str], ...]
    run: ScalingRun
    seeds: int
    test_size: int | None = None  # evaluate on a fixed random subset of the test split (quick profile only)

    def __post_init__(self) -> None:
        unknown = {recipe for _, recipe in self.points} - set(RECIPES)
        if unknown or not self.points or not self.datasets or self.seeds < 1 or (self.test_size is not None and self.test_size < 1):
            raise ValueError(f"need datasets, points with known recipes ({sorted(RECIPES)}), seeds >= 1 and test_size >= 1; got {self}")


# Non-factorial on purpose (a full factorial does not fit a CPU budget): the data axis at no augmentation, the recipe
# axis at the smallest fraction (where augmentation matters within the budget), the length axis from every run's
# checkpoints. (0.1, "none") is the "small data, weak recipe" corner of claim 1.
SMALL_WEAK = (0.1, "none")
DATA_AXIS = (SMALL_WEAK, (0.3, "none"), (1.0, "none"))
RECIPE_AXIS = (SMALL_WEAK, (0.1, "standard"), (0.1, "strong"))
PROTOCOL = {
    "quick": ScalingProtocol(("fashion_mnist",), (SMALL_WEAK, DATA_AXIS[-1], RECIPE_AXIS[-1]), ScalingRun(evals=(15, 30)), seeds=2, test_size=2000),
    "full": ScalingProtocol(("cifar10", "fashion_mnist"), DATA_AXIS + RECIPE_AXIS[1:], ScalingRun(evals=(125, 250, 500, 1000, 2000)), seeds=3),
}


def protocol(profile: str, seeds: int | None = None) -> ScalingProtocol:
    """The profile's grid; ``seeds`` overrides its number of seeds."""
    chosen = pick(profile, PROTOCOL)
    return chosen if seeds is None else replace(chosen, seeds=seeds)


def run_protocol(profile: str, seeds: int | None = None, cache: Cache | None = None) -> pd.DataFrame:
    """Every run of the profile's grid (cached per run): one row per (dataset, fraction, recipe, seed, method, step)."""
    grid = protocol(profile, seeds)
    jobs = [(d, f, r, s) for d in grid.datasets for f, r in grid.points for s in range(grid.seeds)]
    runs = [run_scaling(d, f, r, s, grid.run, profile, cache, grid.test_size) for d, f, r, s in tqdm(jobs, desc="KD at scale")]
    return pd.concat(runs, ignore_index=True)


def gap_to_vanilla_kd(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed, each method's test accuracy minus vanilla KD's at the same grid point and step (column ``gap``)."""
    keys = ["dataset", "fraction", "recipe", "seed", "step"]
    reference = frame[frame.method == "vanilla KD"].set_index(keys)["test_accuracy"]
    others = frame[frame.method != "vanilla KD"]
    if reference.empty or others.empty:
        raise ValueError("need vanilla KD and at least one other method")
    return others.assign(gap=others.test_accuracy.to_numpy() - reference.reindex(pd.MultiIndex.from_frame(others[keys])).to_numpy())


def point_label(fraction: float, recipe: str) -> str:
    """A grid point as the figures and tables name it, e.g. ``"10% none"``."""
    return f"{100 * fraction:g}% {recipe}"


GridStep = tuple[float, str, int]  # (training fraction, recipe, step)


def gap_shrinkage(gaps: pd.DataFrame, method: str, pairs: Sequence[tuple[GridStep, GridStep]], confidence: float = 0.95) -> PairedComparison:
    """How much ``method``'s gap to vanilla KD shrinks from the first to the second grid step of each pair:
    ``gap(small) - gap(large)``, paired per (dataset, pair, seed) and pooled. Above zero: the advantage shrinks."""
    rows = []
    for index, pair in enumerate(pairs):
        for label, (fraction, recipe, step) in zip(("small", "large"), pair):
            part = gaps[(gaps.method == method) & (gaps.fraction == fraction) & (gaps.recipe == recipe) & (gaps.step == step)]
            if part.empty:
                raise ValueError(f"no gap of {method!r} at {point_label(fraction, recipe)}, step {step}")
            rows.append(pd.DataFrame({"setting": part.dataset + f" #{index}", "seed": part.seed, "method": label, "value": part.gap}))
    comparison = paired_comparison(pd.concat(rows), "small", "large", confidence=confidence)
    return replace(comparison, a=f"{method} gap at the smaller scale", b="at the larger scale")


def training_subset(teacher: Teacher, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of the teacher's own training examples (indices into the training split)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    pool = np.asarray(teacher.train_idx)
    n = max(len(np.unique(labels)), int(round(fraction * len(pool))))
    if n >= len(pool):
        return pool
    return pool[semi_supervised_split(labels[pool], n_labelled=n, n_validation=0, n_unlabelled=0, seed=seed).labelled]


def run_scaling(dataset: str, fraction: float, recipe: str, seed: int, run: ScalingRun, profile: str, cache: Cache | None = None,
                test_size: int | None = None) -> pd.DataFrame:
    """Train every method's student once (cached); one row per (method, step) with its test accuracy (on a fixed
    random ``test_size`` subset of the test split if given)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; available: {sorted(RECIPES)}")
    cache = cache or Cache()
    teacher = vision_teacher(dataset, profile, cache=cache)
    key = {"dataset": dataset, "fraction": fraction, "recipe": RECIPES[recipe], "seed": seed, "run": run, "methods": METHODS,
           "teacher": teacher.key, "version": SCALING_VERSION}
    if test_size is not None:
        key["test_size"] = test_size
    rows = cache.get_or_compute("kd_scaling", key, lambda: _train(dataset, fraction, RECIPES[recipe], seed, run, teacher, test_size))
    return pd.DataFrame(rows).assign(dataset=dataset, fraction=fraction, recipe=recipe, seed=seed)


def _train(dataset: str, fraction: float, recipe: Recipe, seed: int, run: ScalingRun, teacher: Teacher, test_size: int | None) -> list[dict]:
    train, test = load(dataset, "train"), load(dataset, "test")
    subset = training_subset(teacher, train.y, fraction, seed)
    x, y = image_inputs(dataset, train.x[subset]), torch.tensor(train.y[subset])
    tested = np.random.default_rng(0).permutation(len(test))[:test_size] if test_size else np.arange(len(test))
    x_test, y_test = image_inputs(dataset, test.x[tested]), torch.tensor(test.y[tested])
    num_classes = len(train.classes)
    set_seed(seed)
    model = StackedCNN(CNNConfig(in_channels=x.shape[1], num_classes=num_classes, widths=run.widths, embed_dim=run.embed_dim), len(METHODS), seed)
    transforms = ([FlipCrop(4 if x.shape[-1] >= 32 else 2)] if recipe.flip_crop else []) + ([MixupCutmix(num_classes)] if recipe.mix else [])
    augmented = bool(transforms)  # the teacher sees the student's augmented batch; without augmentation its logits are computed once
    steps_per_epoch = -(-len(x) // run.batch_size)
    config = TrainConfig(epochs=-(-run.evals[-1] // steps_per_epoch), batch_size=run.batch_size, lr=run.lr, weight_decay=run.weight_decay,
                         patience=None, max_steps=run.evals[-1])
    history = fit(model, [get_objective(name, **params) for name, params in METHODS.values()],
                  TrainSet(x, y, teacher=None if augmented else teacher_logits(teacher, x)), config=config, seed=seed,
                  teacher_model=teacher.model if augmented else None, transforms=transforms, curve_steps=run.evals, curve_sets={"test": (x_test, y_test)},
                  desc=f"{dataset} {fraction:g} {recipe.name} s{seed}")
    return [{"method": name, "step": point["step"], "test_accuracy": float(point["accuracy"][m]), "seconds": point["seconds"]}
            for point in history.curves for m, name in enumerate(METHODS)]


def experiment_name(dataset: str, fraction: float, recipe: str, step: int) -> str:
    """The records' experiment for one point of the grid, e.g. ``"cifar10 30% standard 4000 steps"``."""
    return f"{dataset} {100 * fraction:g}% {recipe} {step} steps"


def to_records(frame: pd.DataFrame) -> list[Record]:
    """One test-accuracy record per (grid point incl. the step count, method, seed); seeds pair within a grid point."""
    return [
        Record(experiment_name(row.dataset, row.fraction, row.recipe, row.step), row.method, "-", int(row.seed), "test_accuracy", float(row.test_accuracy))
        for row in frame.itertuples()
    ]
