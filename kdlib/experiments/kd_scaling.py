"""Notebook 05 (vanilla KD at scale, Hao et al. 2023): one teacher / student pair distilled by several objectives
while the training data and the augmentation recipe grow.

The data axis scales data: a replicate draws a stratified pool of training images from the teacher's training
split, and the fractions are nested, class-balanced prefixes of it (10 % of the pool is inside 30 %, which is inside
100 %). Training length is counted in **epochs per fraction**, so more data means more steps, and every run decays
its learning rate to zero on a cosine schedule: the students end on a plateau (their validation curves, recorded at
fixed shares of the schedule, show it flattening), not at an arbitrary step of a constant-rate run.

One grid cell is one (dataset, fraction, recipe, replicate): every method's student trains in one stacked CNN on
the same augmented (and mixed) batches, from the same initial weights. The teacher labels the student's augmented
batch on the fly ("consistent teaching", as the VanillaKD repository does); without augmentation its logits are
computed once. The CE-only schedule cells (one student each, at 100 % data) train the grid's CE-only student for a
second schedule per recipe: half the grid's where the probe found it flat, double where it was still gaining, so that
each check asks whether the grid's schedule is on the plateau.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from kdlib.data import load
from kdlib.data.splits import stratified_order
from kdlib.distill import get_objective
from kdlib.models import CNNConfig
from kdlib.models.stacked import StackedCNN
from kdlib.models.vision import FlipCrop, MixupCutmix
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.teachers import Teacher, image_inputs, teacher_logits, vision_teacher
from kdlib.train import TrainConfig, TrainSet, accuracy, fit

PROTOCOL_VERSION = 4  # bump when a choice the cells' arguments do not name changes


@dataclass(frozen=True)
class Recipe:
    """How each training batch is augmented: flip + padded crop, then (``mix``) Mixup or CutMix."""

    name: str
    flip_crop: bool
    mix: bool
    description: str


RECIPES = {
    "none": Recipe("none", flip_crop=False, mix=False, description="the raw images"),
    "flip-crop": Recipe("flip-crop", flip_crop=True, mix=False, description="random horizontal flip and padded random crop"),
    "strong": Recipe("strong", flip_crop=True, mix=True, description="flip-crop, then Mixup (alpha 0.2) or CutMix (alpha 1), 50/50 per batch"),
}

# name -> objective spec: the VanillaKD repository's defaults, fixed in advance
METHODS = {
    "CE only": {"name": "ce"},
    "vanilla KD": {"name": "kd_sum"},  # CE + T^2 KL at T = 1, both weights 1
    "DKD": {"name": "dkd"},  # alpha 1, beta 2, T 1
    "DIST": {"name": "dist"},  # beta = gamma = tau = 1
}
METHOD_SETS = {"all": tuple(METHODS), "CE only": ("CE only",)}
VARIANTS = ("DIST", "DKD")  # compared with vanilla KD
REFERENCE = "vanilla KD"

# The student of notebook 00: a 3-block CNN (16/32/64 channels, 64-d embedding; 4x fewer parameters than its teacher).
# The previous regime's 2-block (8/16) student gained 3.5-6.4 pp between 1,000 and 2,000 steps and lost 6-8 pp to the
# strong recipe: too small to use augmentation.
STUDENT = {"widths": (16, 32, 64), "embed_dim": 64}
OPTIMISER = {"batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4}  # AdamW, cosine to zero (notebook 00's student recipe)
CURVE_SHARES = (0.25, 0.5, 0.75, 1.0)  # where in the schedule the validation curve is measured
VALIDATION = 500  # images of the teacher's validation split for the curves (never trained on; evaluations cost 4 students each)
CROP_PADDING = {1: 2, 3: 4}  # pixels of padding for the random crop, by input channels (28x28 grey, 32x32 colour)


@dataclass(frozen=True)
class ScalingSettings:
    """One profile's grid.

    Attributes:
        datasets: image datasets with a shared teacher (:func:`kdlib.teachers.vision_teacher`).
        pool: training images at 100 % (a stratified draw from the teacher's training split, per replicate).
        fractions: the data axis, shares of the pool (nested).
        recipes: the recipe axis (keys of :data:`RECIPES`).
        epochs: epochs of each fraction, aligned with ``fractions`` (more data must mean more steps).
        replicates: replicates of the main grid (each redraws the pool, the initial weights and the batch order).
        schedule_check: the CE-only schedule check at 100 % data, as (recipe, epochs) pairs: each recipe's second
            schedule beside the grid's own (shorter or longer; the claim compares the shorter with the longer).
        teachers: the teachers' profile.
        test_size: evaluate on the first ``test_size`` images of a fixed permutation of the test split (None: all).
        pilot: the power pilot's regime (:func:`pilot_cells`): ``pool``, ``epochs`` at the smallest and the largest
            fraction, and ``schedule``, the CE-only check's (recipe, epochs) pairs; None: the grid's own.
        probe: the CE-only probe that chose the schedule, as (pool, fraction, recipe, epochs, seed) runs on pilot seeds.
    """

    datasets: tuple[str, ...]
    pool: int
    fractions: tuple[float, ...]
    recipes: tuple[str, ...]
    epochs: tuple[int, ...]
    replicates: int
    schedule_check: tuple[tuple[str, int], ...]
    teachers: str
    test_size: int | None = None
    pilot: dict | None = None
    probe: tuple[tuple[int, float, str, int, int], ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.recipes) - set(RECIPES)
        if unknown or not self.recipes or not self.datasets:
            raise ValueError(f"need datasets and recipes from {sorted(RECIPES)}, got {self.datasets}, {self.recipes}")
        if not self.fractions or list(self.fractions) != sorted(set(self.fractions)) or not 0 < self.fractions[0] or self.fractions[-1] != 1:
            raise ValueError(f"fractions must increase to 1 (the whole pool), got {self.fractions}")
        if len(self.epochs) != len(self.fractions) or min(self.epochs) < 1:
            raise ValueError(f"need one positive epoch count per fraction, got {self.epochs} for {self.fractions}")
        steps = [self.steps(f) for f in self.fractions]
        if steps != sorted(set(steps)):
            raise ValueError(f"more data must mean more steps: fractions {self.fractions} x epochs {self.epochs} give {steps} steps")
        if self.replicates < 1 or self.pool < 10 or (self.test_size is not None and self.test_size < 1):
            raise ValueError(f"need replicates >= 1, a pool of >= 10 images and test_size >= 1, got {self}")
        recipes = [r for r, _ in self.schedule_check]
        if len(set(recipes)) != len(recipes) or not set(recipes) <= set(self.recipes) or any(e == self.epochs[-1] or e < 1 for _, e in self.schedule_check):
            raise ValueError(f"the schedule check needs one second schedule (>= 1 epoch, not the grid's {self.epochs[-1]}) per recipe of "
                             f"{self.recipes}, got {self.schedule_check}")

    def pilot_regime(self) -> dict:
        """The power pilot's ``pool``, ``epochs`` (smallest, largest fraction) and ``schedule`` (the check's (recipe, epochs) pairs)."""
        return self.pilot or {"pool": self.pool, "epochs": (self.epochs[0], self.epochs[-1]), "schedule": self.schedule_check}

    def schedule_pair(self, recipe: str, regime: dict | None = None) -> tuple[int, int]:
        """(shorter, longer) epochs of ``recipe``'s schedule check at 100 % data: the grid's (or the pilot ``regime``'s)
        schedule and the check's second one."""
        longest, checks = (self.epochs[-1], dict(self.schedule_check)) if regime is None else (regime["epochs"][-1], dict(regime["schedule"]))
        if recipe not in checks:
            raise ValueError(f"no schedule check for recipe {recipe!r}; checked: {sorted(checks)}")
        return min(checks[recipe], longest), max(checks[recipe], longest)

    def schedule_pairs(self, regime: dict | None = None) -> dict[str, tuple[int, int]]:
        """:meth:`schedule_pair` of every checked recipe: recipe -> (shorter, longer) epochs."""
        checks = self.schedule_check if regime is None else regime["schedule"]
        return {recipe: self.schedule_pair(recipe, regime) for recipe, _ in checks}

    def images(self, fraction: float) -> int:
        """Training images at ``fraction`` of the pool."""
        return training_images(self.pool, fraction)

    def epochs_at(self, fraction: float) -> int:
        if fraction not in self.fractions:
            raise ValueError(f"fraction {fraction} is not on the data axis {self.fractions}")
        return self.epochs[self.fractions.index(fraction)]

    def steps(self, fraction: float) -> int:
        """Updates of one run at ``fraction``: epochs x batches per epoch."""
        return self.epochs_at(fraction) * -(-self.images(fraction) // OPTIMISER["batch_size"])


def training_images(pool: int, fraction: float) -> int:
    """``round(fraction * pool)`` images, at least one per class of a 10-class dataset."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    return max(10, int(round(fraction * pool)))


SETTINGS = {
    "quick": dict(datasets=("fashion_mnist",), pool=400, fractions=(0.25, 1.0), recipes=("none", "strong"), epochs=(8, 4),
                  schedule_check=(("none", 2), ("strong", 8)), teachers="quick", test_size=1000),
    # The factorial: 10 / 30 / 100 % of a 500-image pool x {none, flip-crop, strong}. The CE-only probe (seeds
    # 1000-1001) chose the schedules: 150 -> 300 epochs of 50 images changed no-augmentation accuracy by < 0.4 pp, and at
    # 500 images the strong recipe still gained from 128 to 256 epochs (78.06 / 80.28 / 81.98 % at 64 / 128 / 256; no
    # augmentation 79.06 / 79.10 / 79.34), so 100 % trains 256 epochs (2,048 steps), the longest probed. The 30 % point's
    # 278 epochs (834 steps) interpolate the two ends geometrically in the number of images. The test metric is a fixed
    # 5,000 of the 10,000 test images. CIFAR-10 does not fit the budget.
    # The schedule check: the first full run compared 128 with 256 epochs for both recipes (no augmentation -0.08 pp, flat;
    # strong -2.00 pp, still gaining at 128), which cannot tell whether 256 is on the plateau under the strong recipe, so
    # the strong recipe's second schedule is 512 epochs (4,096 steps); no augmentation keeps 128. Before this was declared,
    # benchmarks/kd_scaling_plateau.py on the three pilot seeds gave 512 - 256 = -0.24 / +0.20 / +0.20 pp (strong).
    "full": dict(datasets=("fashion_mnist",), pool=500, fractions=(0.1, 0.3, 1.0), recipes=("none", "flip-crop", "strong"), epochs=(300, 278, 256),
                 schedule_check=(("none", 128), ("strong", 512)), teachers="full", test_size=5000,
                 # the power pilot's shorter, cheaper regime (run first); its schedule check mirrors the grid's: half and double
                 pilot=dict(pool=1000, epochs=(40, 16), schedule=(("none", 8), ("strong", 32))),
                 probe=tuple((1000, 1.0, r, e, 1000) for e in (32, 64) for r in ("none", "strong", "flip-crop") if (e, r) != (64, "flip-crop"))
                 + tuple((500, f, r, e, 1001) for f, schedules in ((0.1, (150, 300)), (1.0, (64, 128, 256))) for e in schedules for r in ("none", "strong"))),
}
SETTINGS["quick"]["probe"] = tuple((400, 1.0, r, e, 1000) for e in (2, 4) for r in ("none", "strong"))
PILOT_SEEDS = (1000, 1001, 1002)  # the pilot's replicates: never reused in a claim


def settings(profile: str, replicates: int) -> ScalingSettings:
    """The settings of ``profile``; ``replicates`` is the declared number (the quick profile runs 2)."""
    return ScalingSettings(**pick(profile, SETTINGS), replicates=pick(profile, {"quick": 2, "full": replicates}))


# --- data -----------------------------------------------------------------------------------------------------------
def pool_order(teacher: Teacher, labels: np.ndarray, seed: int) -> np.ndarray:
    """The replicate's order of the teacher's training images: stratified and random, so that every prefix is
    class-balanced and a smaller fraction of the pool is a prefix of a larger one (indices into the training split)."""
    candidates = np.asarray(teacher.train_idx)
    return candidates[stratified_order(labels[candidates], np.random.default_rng(seed))]


def nested_subset(teacher: Teacher, labels: np.ndarray, pool: int, fraction: float, seed: int) -> np.ndarray:
    """The first ``fraction`` of the replicate's pool (:func:`pool_order`)."""
    if pool > len(teacher.train_idx):
        raise ValueError(f"a pool of {pool} images exceeds the teacher's {len(teacher.train_idx)} training images")
    return pool_order(teacher, labels, seed)[: training_images(pool, fraction)]


@lru_cache(maxsize=4)
def _evaluation_sets(dataset: str, teachers: str, test_size: int | None) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(validation, test) tensors in channels-last layout: the first :data:`VALIDATION` images of the teacher's
    validation split, and the test split (or the first ``test_size`` images of a fixed permutation of it)."""
    teacher = vision_teacher(dataset, teachers)
    train, test = load(dataset, "train"), load(dataset, "test")
    val_idx = np.asarray(teacher.val_idx)[:VALIDATION]
    tested = np.random.default_rng(0).permutation(len(test))[:test_size] if test_size else np.arange(len(test))
    def images(x: np.ndarray) -> torch.Tensor:
        return image_inputs(dataset, x).contiguous(memory_format=torch.channels_last)
    return (images(train.x[val_idx]), torch.tensor(train.y[val_idx])), (images(test.x[tested]), torch.tensor(test.y[tested]))


def transforms_for(recipe: str, channels: int, num_classes: int) -> list:
    """The recipe's batch transforms for :func:`kdlib.train.fit`."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; available: {sorted(RECIPES)}")
    chosen = RECIPES[recipe]
    return ([FlipCrop(CROP_PADDING[channels])] if chosen.flip_crop else []) + ([MixupCutmix(num_classes)] if chosen.mix else [])


def curve_steps(planned: int, shares: Sequence[float] = CURVE_SHARES) -> list[int]:
    """The steps at which the validation curve is measured: ``shares`` of the ``planned`` updates (distinct, >= 1)."""
    if planned < 1:
        raise ValueError(f"planned steps must be >= 1, got {planned}")
    return sorted({max(1, int(round(share * planned))) for share in shares})


# --- the grid cell ----------------------------------------------------------------------------------------------------
def train_cell(dataset: str, pool: int, fraction: float, recipe: str, epochs: int, methods: str, teachers: str, test_size: int | None,
               seed: int) -> list[dict]:
    """One grid cell: the students of ``methods`` (a key of :data:`METHOD_SETS`) on ``fraction`` of the replicate's
    pool under ``recipe``, trained for ``epochs`` (cosine to zero) as one stack from the same initial weights.

    Returns one row per (method, measurement): the validation curve (``set="val"`` at :data:`CURVE_SHARES` of the
    schedule) and the final test accuracy (``set="test"``, with the run's steps and training seconds).
    """
    if methods not in METHOD_SETS:
        raise ValueError(f"methods must be one of {sorted(METHOD_SETS)}, got {methods!r}")
    names = METHOD_SETS[methods]
    distilled = any(METHODS[name]["name"] != "ce" for name in names)
    teacher = vision_teacher(dataset, teachers)
    train = load(dataset, "train")
    subset = nested_subset(teacher, train.y, pool, fraction, seed)
    x, y = image_inputs(dataset, train.x[subset]), torch.tensor(train.y[subset])
    val, test = _evaluation_sets(dataset, teachers, test_size)
    num_classes = len(teacher.classes)
    cnn = CNNConfig(in_channels=x.shape[1], num_classes=num_classes, **STUDENT)
    model = StackedCNN(cnn, len(names), seed)  # the engine puts it (and the teacher) in channels-last
    transforms = transforms_for(recipe, x.shape[1], num_classes)
    # the teacher labels the augmented batch on the fly; without augmentation its logits are computed once; CE only needs none
    on_the_fly = distilled and bool(transforms)
    stored = teacher_logits(teacher, x) if distilled and not transforms else None
    config = TrainConfig(epochs=epochs, batch_size=OPTIMISER["batch_size"], lr=OPTIMISER["lr"], weight_decay=OPTIMISER["weight_decay"],
                         patience=None, cosine=True)
    planned = config.planned_steps(len(x))
    history = fit(model, [get_objective(**METHODS[name]) for name in names], TrainSet(x, y, teacher=stored), config=config, seed=seed,
                  teacher_model=teacher.model if on_the_fly else None, transforms=transforms, curve_steps=curve_steps(planned),
                  curve_sets={"val": val}, desc=f"{dataset} {fraction:g} {recipe} s{seed}", progress=False)
    final = accuracy(model, *test, batch_size=500)
    per_epoch = config.steps_per_epoch(len(x))
    rows = [{"method": name, "set": "val", "step": point["step"], "epoch": point["step"] / per_epoch, "accuracy": float(point["accuracy"][m])}
            for point in history.curves for m, name in enumerate(names)]
    return rows + [{"method": name, "set": "test", "step": history.steps, "epoch": float(epochs), "accuracy": float(final[m]),
                    "seconds": history.seconds, "images": len(x)} for m, name in enumerate(names)]


def context(chosen: ScalingSettings) -> dict:
    """What the cells depend on beyond their arguments: teachers, methods, student, optimiser, evaluation sets."""
    return {"teachers": [vision_teacher(d, chosen.teachers).key for d in chosen.datasets], "methods": METHODS, "recipes": RECIPES,
            "student": STUDENT, "optimiser": OPTIMISER, "curve": CURVE_SHARES, "validation": VALIDATION, "version": PROTOCOL_VERSION}


def _cell(chosen: ScalingSettings, dataset: str, fraction: float, recipe: str, epochs: int, methods: str, seed: int, pool: int | None = None) -> dict:
    return {"dataset": dataset, "pool": chosen.pool if pool is None else pool, "fraction": fraction, "recipe": recipe, "epochs": epochs, "methods": methods,
            "teachers": chosen.teachers, "test_size": chosen.test_size, "seed": int(seed)}


def cells(chosen: ScalingSettings, seeds: Sequence[int], points: Sequence[tuple[float, str]] | None = None) -> list[dict]:
    """The factorial grid (or only ``points``, (fraction, recipe) pairs): dataset x fraction x recipe x replicate
    seed, every method in one stack per cell."""
    chosen_points = [(f, r) for f in chosen.fractions for r in chosen.recipes] if points is None else list(points)
    return [_cell(chosen, d, f, r, chosen.epochs_at(f), "all", s) for d in chosen.datasets for f, r in chosen_points for s in seeds]


def pilot_cells(chosen: ScalingSettings) -> list[dict]:
    """The power pilot (seeds :data:`PILOT_SEEDS`, never reused) in its own regime (``chosen.pilot``): the corners
    (smallest and largest fraction x weakest and strongest recipe) and the CE-only schedule check at 100 % data."""
    regime = chosen.pilot_regime()
    small, large = chosen.fractions[0], chosen.fractions[-1]
    weak, strong = chosen.recipes[0], chosen.recipes[-1]
    grid = [_cell(chosen, d, f, r, e, "all", s, regime["pool"]) for d in chosen.datasets for f, e in zip((small, large), regime["epochs"])
            for r in (weak, strong) for s in PILOT_SEEDS]
    checks = [_cell(chosen, d, large, r, e, "CE only", s, regime["pool"]) for d in chosen.datasets for r, e in regime["schedule"] for s in PILOT_SEEDS]
    return grid + checks


def probe_cells(chosen: ScalingSettings) -> list[dict]:
    """The CE-only probe that chose the pool and the schedules (``chosen.probe``, on pilot seeds)."""
    return [_cell(chosen, d, f, r, e, "CE only", s, pool) for d in chosen.datasets for pool, f, r, e, s in chosen.probe]


def schedule_cells(chosen: ScalingSettings, seeds: Sequence[int]) -> list[dict]:
    """The CE-only schedule check at 100 % data: one student per (dataset, recipe, seed) at the recipe's second
    schedule (``chosen.schedule_check``); the grid's own CE-only student is the other."""
    return [_cell(chosen, d, 1.0, r, e, "CE only", s) for d in chosen.datasets for r, e in chosen.schedule_check for s in seeds]


# --- records ------------------------------------------------------------------------------------------------------------
def point_name(dataset: str, fraction: float, recipe: str) -> str:
    """The records' experiment for one grid point, e.g. ``"fashion_mnist 10% none"``."""
    return f"{dataset} {100 * fraction:g}% {recipe}"


def schedule_name(dataset: str, recipe: str) -> str:
    """The records' experiment of the CE-only schedule check at 100 % data under ``recipe``."""
    return f"schedule: {point_name(dataset, 1.0, recipe)}"


def schedule_runs(frame: pd.DataFrame, schedules: pd.DataFrame) -> pd.DataFrame:
    """The schedule check's test rows: the schedule cells plus the grid's own CE-only students at 100 % data of the
    same recipes and replicates (the check's other schedule)."""
    test = frame[frame.set == "test"]
    grid_own = test[(test.method == "CE only") & (test.fraction == 1.0) & test.recipe.isin(schedules.recipe.unique()) & test.seed.isin(schedules.seed.unique())]
    return pd.concat([schedules[schedules.set == "test"], grid_own])


def to_records(frame: pd.DataFrame, schedules: pd.DataFrame | None = None) -> list[Record]:
    """Test accuracy per (grid point, method, replicate) from the grid, and per (recipe, schedule, replicate) for CE
    only at 100 % data from :func:`schedule_runs` (setting ``"N epochs"``)."""
    records = [Record(point_name(r.dataset, r.fraction, r.recipe), r.method, f"{r.epochs} epochs", int(r.seed), "test_accuracy", float(r.accuracy))
               for r in frame[frame.set == "test"].itertuples()]
    if schedules is not None:
        records += [Record(schedule_name(r.dataset, r.recipe), f"{r.epochs} epochs", "CE only", int(r.seed), "test_accuracy", float(r.accuracy))
                    for r in schedule_runs(frame, schedules).itertuples()]
    return records


def gaps(frame: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per replicate, each method's final test accuracy minus ``reference``'s at the same grid point (column ``gap``, pp)."""
    keys = ["dataset", "fraction", "recipe", "seed"]
    test = frame[frame.set == "test"]
    base = test[test.method == reference].set_index(keys)["accuracy"]
    others = test[test.method != reference]
    if base.empty or others.empty:
        raise ValueError(f"need {reference!r} and at least one other method")
    matched = base.reindex(pd.MultiIndex.from_frame(others[keys])).to_numpy()
    return others.assign(gap=100 * (others.accuracy.to_numpy() - matched), point=[point_name(*k) for k in others[keys[:3]].itertuples(index=False)])


def step_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """Training seconds per step of every cell kind (methods in the stack, recipe), from the cells' test rows."""
    test = frame[frame.set == "test"].drop_duplicates(["dataset", "fraction", "recipe", "epochs", "methods", "seed"])
    table = test.assign(ms_per_step=1000 * test.seconds / test.step)
    return table.groupby(["methods", "recipe"]).agg(cells=("seed", "size"), steps=("step", "sum"), seconds=("seconds", "sum"),
                                                     ms_per_step=("ms_per_step", "mean")).round(1)


def late_gain(frame: pd.DataFrame) -> pd.DataFrame:
    """The plateau evidence of the grid: per (fraction, recipe, method), the validation accuracy gained over the last
    quarter of the schedule (last curve point minus the one before, pp), mean and max over replicates."""
    val = frame[frame.set == "val"].sort_values("step")
    keys = ["dataset", "fraction", "recipe", "method", "seed"]
    last_two = val.groupby(keys).accuracy.agg(lambda a: 100 * (a.iloc[-1] - a.iloc[-2]) if len(a) > 1 else np.nan)
    if last_two.isna().all():
        raise ValueError("the validation curves need at least two points per run")
    return last_two.groupby(keys[:-1]).agg(["mean", "max"]).round(2)
