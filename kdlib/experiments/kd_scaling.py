"""Notebook 05 (vanilla KD at scale): one teacher / student pair, distilled by several objectives while the training
data, the augmentation recipe and the training length vary.

Per (dataset, fraction, recipe, seed) every method's student trains in one stacked CNN on the same augmented (and
mixed) batches, which the teacher also sees ("consistent teaching", as in the VanillaKD repository). The learning
rate is constant, so the test accuracy recorded after s steps is exactly that of a run of length s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.data import load, semi_supervised_split
from kdlib.distill import get_objective
from kdlib.models import STUDENT_CNN, CNNConfig, random_flip_crop
from kdlib.models.stacked_cnn import StackedCNN
from kdlib.models.vision import mixup_cutmix
from kdlib.results import Record
from kdlib.teachers import Teacher, image_inputs, vision_teacher
from kdlib.train import epoch_batches, optimizer_step, predict_outputs, set_seed

SCALING_VERSION = 1


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
    "KD, T = 4": ("kd_sum", {"temperature": 4.0}),
    "DKD": ("dkd", {}),
    "DIST": ("dist", {}),
}


@dataclass(frozen=True)
class ScalingRun:
    """The student architecture and its optimisation: AdamW at a constant rate, test accuracy after each of ``evals`` steps."""

    evals: tuple[int, ...]
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    widths: tuple[int, ...] = STUDENT_CNN["widths"]
    embed_dim: int = STUDENT_CNN["embed_dim"]

    def __post_init__(self) -> None:
        if not self.evals or min(self.evals) < 1 or list(self.evals) != sorted(set(self.evals)):
            raise ValueError(f"evals must be increasing positive step counts, got {self.evals}")


def training_subset(teacher: Teacher, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of the teacher's own training examples (indices into the training split)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    pool = np.asarray(teacher.train_idx)
    n = max(len(np.unique(labels)), int(round(fraction * len(pool))))
    if n >= len(pool):
        return pool
    return pool[semi_supervised_split(labels[pool], n_labelled=n, n_validation=0, n_unlabelled=0, seed=seed).labelled]


def run_scaling(dataset: str, fraction: float, recipe: str, seed: int, run: ScalingRun, profile: str, cache: Cache | None = None) -> pd.DataFrame:
    """Train every method's student once (cached); one row per (method, step) with its test accuracy."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; available: {sorted(RECIPES)}")
    cache = cache or Cache()
    teacher = vision_teacher(dataset, profile, cache=cache)
    key = {"dataset": dataset, "fraction": fraction, "recipe": RECIPES[recipe], "seed": seed, "run": run, "methods": METHODS,
           "teacher": teacher.key, "version": SCALING_VERSION}
    rows = cache.get_or_compute("kd_scaling", key, lambda: _train(dataset, fraction, RECIPES[recipe], seed, run, teacher))
    return pd.DataFrame(rows).assign(dataset=dataset, fraction=fraction, recipe=recipe, seed=seed)


def _train(dataset: str, fraction: float, recipe: Recipe, seed: int, run: ScalingRun, teacher: Teacher) -> list[dict]:
    train, test = load(dataset, "train"), load(dataset, "test")
    subset = training_subset(teacher, train.y, fraction, seed)
    x, y = image_inputs(dataset, train.x[subset]), torch.tensor(train.y[subset])
    x_test, y_test = image_inputs(dataset, test.x), torch.tensor(test.y)
    num_classes = len(train.classes)
    set_seed(seed)
    model = StackedCNN(CNNConfig(in_channels=x.shape[1], num_classes=num_classes, widths=run.widths, embed_dim=run.embed_dim), len(METHODS), seed)
    objectives = [get_objective(name, **params) for name, params in METHODS.values()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    generator, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    padding = 4 if x.shape[-1] >= 32 else 2
    teacher.model.eval()
    fixed_inputs = not (recipe.flip_crop or recipe.mix)
    teacher_all = predict_outputs(teacher.model, x) if fixed_inputs else None  # without augmentation, once for all steps
    rows, step, start = [], 0, time.perf_counter()
    bar = tqdm(total=run.evals[-1], desc=f"{dataset} {fraction:g} {recipe.name} s{seed}", leave=False)
    while step < run.evals[-1]:
        for _, idx in epoch_batches(len(x), run.batch_size, generator):
            batch, labels = x[idx], y[idx]
            if recipe.flip_crop:
                batch = random_flip_crop(batch, generator, padding)
            if recipe.mix:
                batch, labels = mixup_cutmix(batch, nn.functional.one_hot(labels, num_classes).float(), rng)
            if fixed_inputs:
                teacher_logits = teacher_all[idx]
            else:
                with torch.no_grad():
                    teacher_logits = teacher.model(batch)
            logits = model(batch)
            optimizer_step(optimizer, None, sum(objective(logits[m], labels, teacher_logits) for m, objective in enumerate(objectives)))
            step += 1
            bar.update()
            if step in run.evals:
                accuracy = stacked_test_accuracy(model, x_test, y_test)
                rows += [{"method": name, "step": step, "test_accuracy": float(a), "seconds": time.perf_counter() - start} for name, a in zip(METHODS, accuracy)]
            if step == run.evals[-1]:
                break
    bar.close()
    return rows


def stacked_test_accuracy(model: StackedCNN, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Accuracy of every student of ``model`` on (x, y), in eval mode: (M,)."""
    return (predict_outputs(model, x, dim=1).argmax(-1) == y[None]).float().mean(1).numpy()


def experiment_name(dataset: str, fraction: float, recipe: str, step: int) -> str:
    """The records' experiment for one point of the grid, e.g. ``"cifar10 30% standard 4000 steps"``."""
    return f"{dataset} {100 * fraction:g}% {recipe} {step} steps"


def to_records(frame: pd.DataFrame) -> list[Record]:
    """One test-accuracy record per (grid point incl. the step count, method, seed); seeds pair within a grid point."""
    return [
        Record(experiment_name(row.dataset, row.fraction, row.recipe, row.step), row.method, "-", int(row.seed), "test_accuracy", float(row.test_accuracy))
        for row in frame.itertuples()
    ]
