"""Every teacher, trained once and cached: vision CNNs and text teachers (frozen encoder + MLP head), on a dataset's
training split or on a few labelled examples (the noisy teachers of the semi-supervised notebooks).

A teacher is keyed by its recipe, its data's checksums (and, for a few-label teacher, its labelled indices and seed)
and :data:`RECIPE_VERSION`; any change trains a new one. The shared teachers are trained on a fixed subset of the
training split (``train_idx``) and selected on ``val_idx``; the rest stays free for transfer / unlabelled sets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from kdlib.cache import Cache, fingerprint
from kdlib.data import data_version, load, semi_supervised_split, spec
from kdlib.distill import get_objective
from kdlib.models import MLP, TEACHER_CNN, CNNConfig, SmallCNN, cached_embeddings, images_to_tensor
from kdlib.models.encoders import encoder_spec
from kdlib.models.vision import FlipCrop
from kdlib.profiles import check_profile, pick
from kdlib.train import TrainConfig, TrainSet, evaluate, fit, predict_outputs, set_seed

RECIPE_VERSION = 2

LABEL_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "fine": lambda y: y,
    "mod2": lambda y: y % 2,  # the LELP paper's binarisation: 5 hidden subclasses per class on 10-class data
}


@dataclass(frozen=True)
class VisionTeacherRecipe:
    dataset: str
    n_train: int | None  # None: the whole training split less the validation examples
    n_val: int
    widths: tuple[int, ...]
    embed_dim: int
    train: TrainConfig
    augment: bool
    labels: str = "fine"


@dataclass(frozen=True)
class TextTeacherRecipe:
    dataset: str
    encoder: str
    max_length: int
    n_train: int
    n_val: int  # taken from the training split when the dataset has no validation split
    n_test: int | None  # None: the whole test split
    hidden: tuple[int, ...]
    train: TrainConfig


@dataclass
class Teacher:
    """A trained teacher and what it was measured at."""

    name: str
    key: str
    model: nn.Module
    recipe: VisionTeacherRecipe | TextTeacherRecipe
    classes: tuple[str, ...]
    train_idx: np.ndarray
    val_idx: np.ndarray
    val_accuracy: float
    test_accuracy: float
    train_seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def summary(self) -> dict:
        return {
            "teacher": self.name,
            "parameters": self.num_parameters,
            "train examples": len(self.train_idx),
            "val acc": self.val_accuracy,
            "test acc": self.test_accuracy,
            "train s (cold)": round(self.train_seconds, 1),
        }


# --- vision ---------------------------------------------------------------------------------------------------
_VISION = {
    "fashion_mnist": {
        "full": dict(n_train=None, n_val=5000, epochs=5, binary_epochs=3),
        "quick": dict(n_train=2000, n_val=500, epochs=2),
        "augment": False,
    },
    "cifar10": {
        "full": dict(n_train=None, n_val=5000, epochs=8, binary_epochs=8),
        "quick": dict(n_train=2000, n_val=500, epochs=2),
        "augment": True,
    },
}


def vision_recipe(dataset: str, profile: str, labels: str = "fine") -> VisionTeacherRecipe:
    """The teacher recipe for an image dataset in a profile.

    Binarised teachers (``labels="mod2"``, notebook 01 only) train for ``binary_epochs`` where the profile sets it:
    8 on CIFAR-10 (85.5 % test against 80.7 % after 2, measured by ``benchmarks/lelp_probe.py``), 3 on Fashion-MNIST
    (the notes' pilot: 97.8 %), so that a student has a teacher worth distilling.
    """
    check_profile(profile)
    if dataset not in _VISION:
        raise ValueError(f"no vision teacher recipe for {dataset!r}; available: {sorted(_VISION)}")
    if labels not in LABEL_MAPS:
        raise ValueError(f"labels must be one of {sorted(LABEL_MAPS)}, got {labels!r}")
    sizes = _VISION[dataset][profile]
    return VisionTeacherRecipe(
        dataset=dataset,
        n_train=sizes["n_train"],
        n_val=sizes["n_val"],
        widths=(32, 64, 128),
        embed_dim=256,
        train=TrainConfig(epochs=sizes["binary_epochs"] if labels != "fine" and "binary_epochs" in sizes else sizes["epochs"], batch_size=128, lr=2e-3, weight_decay=5e-4, patience=None, cosine=True),
        augment=_VISION[dataset]["augment"],
        labels=labels,
    )


@lru_cache(maxsize=None)
def image_stats(dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, from the first 10,000 training images."""
    images = load(dataset, "train").x[:10_000]
    axes = (0, 1, 2) if images.ndim == 4 else None
    pixels = images.astype(np.float32) / 255.0
    mean, std = pixels.mean(axis=axes), pixels.std(axis=axes)
    return tuple(np.atleast_1d(mean).tolist()), tuple(np.atleast_1d(std).tolist())


def image_inputs(dataset: str, images: np.ndarray) -> torch.Tensor:
    """uint8 images -> standardised float tensor, with the training split's statistics."""
    mean, std = image_stats(dataset)
    return images_to_tensor(images, mean, std)


def vision_teacher(dataset: str, profile: str, labels: str = "fine", cache: Cache | None = None, seed: int = 0) -> Teacher:
    """The CNN teacher of ``dataset`` (trained on first use, then loaded from the cache).

    ``seed`` draws the teacher's initial weights and batch order (the training / validation split stays the same):
    a replicate that retrains its teacher passes its own; 0 is the teacher every notebook shares.
    """
    if seed < 0:
        raise ValueError(f"a teacher seed must be >= 0, got {seed}")
    recipe = vision_recipe(dataset, profile, labels)
    cache = cache or Cache()
    key = fingerprint({"recipe": recipe, "data": data_version(dataset), "version": RECIPE_VERSION, **({"seed": seed} if seed else {})})
    train, test = load(dataset, "train"), load(dataset, "test")
    relabel = LABEL_MAPS[labels]
    y_train, y_test = relabel(train.y), relabel(test.y)
    classes = train.classes if labels == "fine" else tuple(f"{labels}={c}" for c in range(int(y_train.max()) + 1))
    n_train = recipe.n_train if recipe.n_train is not None else len(train) - recipe.n_val
    split = semi_supervised_split(train.y, n_labelled=n_train, n_validation=recipe.n_val, n_unlabelled=0, seed=0)
    config = CNNConfig(in_channels=1 if train.x.ndim == 3 else 3, num_classes=len(classes), widths=recipe.widths, embed_dim=recipe.embed_dim)

    def train_teacher() -> dict:
        set_seed(seed)
        model = SmallCNN(config)
        start = time.perf_counter()
        history = fit(
            model,
            get_objective("ce"),
            TrainSet(image_inputs(dataset, train.x[split.labelled]), torch.tensor(y_train[split.labelled])),
            config=recipe.train,
            seed=seed,
            val=(image_inputs(dataset, train.x[split.validation]), torch.tensor(y_train[split.validation])),
            transforms=[FlipCrop()] if recipe.augment else [],
            desc=f"teacher {dataset}" + (f" s{seed}" if seed else ""),
        )
        test_accuracy = evaluate(model, image_inputs(dataset, test.x), torch.tensor(y_test))
        return {"state": _cpu_state(model), "val": float(history.best_val_accuracy[0]), "test": test_accuracy, "seconds": time.perf_counter() - start}

    entry = cache.get_or_compute("teachers", key, train_teacher)
    model = SmallCNN(config)
    model.load_state_dict(entry["state"])
    model.eval()
    return Teacher(
        f"{dataset}/cnn" + ("" if labels == "fine" else f"/{labels}") + (f"/seed{seed}" if seed else ""), key, model, recipe, classes,
        split.labelled, split.validation, entry["val"], entry["test"], entry["seconds"],
    )


# --- text -----------------------------------------------------------------------------------------------------
_TEXT = {
    "imdb": {"full": dict(n_train=6000, n_val=1000, n_test=2000), "quick": dict(n_train=200, n_val=100, n_test=200)},
    "sst2": {"full": dict(n_train=20000, n_val=872, n_test=None), "quick": dict(n_train=1000, n_val=300, n_test=500)},
    "sentiment140": {"full": dict(n_train=20000, n_val=2000, n_test=None), "quick": dict(n_train=1000, n_val=300, n_test=None)},
    "tweets": {"full": dict(n_train=20000, n_val=2000, n_test=None), "quick": dict(n_train=1000, n_val=300, n_test=500)},
}
TEXT_MAX_LENGTH = {"imdb": 128, "sst2": 64, "sentiment140": 64, "tweets": 64}


def text_recipe(dataset: str, profile: str, encoder: str = "minilm-l6") -> TextTeacherRecipe:
    """The teacher recipe for a text dataset in a profile."""
    check_profile(profile)
    if dataset not in _TEXT:
        raise ValueError(f"no text teacher recipe for {dataset!r}; available: {sorted(_TEXT)}")
    encoder_spec(encoder)
    return TextTeacherRecipe(
        dataset=dataset,
        encoder=encoder,
        max_length=TEXT_MAX_LENGTH[dataset],
        hidden=(256,),
        train=TrainConfig(epochs=60, batch_size=128, lr=1e-3, weight_decay=1e-4, patience=8),
        **_TEXT[dataset][profile],
    )


@dataclass(frozen=True)
class TextSplits:
    """The texts a text teacher was built on (indices into the dataset's train split, plus the test subset)."""

    train_texts: list[str]
    train_labels: np.ndarray
    train_idx: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    val_idx: np.ndarray  # indices into the train split, or into the validation split when the dataset has one
    test_texts: list[str]
    test_labels: np.ndarray


def text_splits(recipe: TextTeacherRecipe) -> TextSplits:
    """Deterministic teacher train / validation / test subsets of a text dataset."""
    train = load(recipe.dataset, "train")
    has_val = "validation" in spec(recipe.dataset).splits
    split = semi_supervised_split(train.y, n_labelled=recipe.n_train, n_validation=0 if has_val else recipe.n_val, n_unlabelled=0, seed=0)
    if has_val:
        val = load(recipe.dataset, "validation")
        val_idx = np.arange(min(recipe.n_val, len(val)))
        val_texts, val_labels = [val.x[i] for i in val_idx], val.y[val_idx]
    else:
        val_idx = split.validation
        val_texts, val_labels = [train.x[i] for i in val_idx], train.y[val_idx]
    test = load(recipe.dataset, "test")
    if recipe.n_test is not None and recipe.n_test < len(test):
        test = test.subset(semi_supervised_split(test.y, n_labelled=recipe.n_test, n_validation=0, n_unlabelled=0, seed=0).labelled)
    return TextSplits(
        [train.x[i] for i in split.labelled], train.y[split.labelled], split.labelled, val_texts, val_labels, val_idx, list(test.x), test.y
    )


def text_teacher(dataset: str, profile: str, encoder: str = "minilm-l6", cache: Cache | None = None) -> Teacher:
    """Frozen sentence encoder + MLP head trained on labels (embeddings and head cached)."""
    recipe = text_recipe(dataset, profile, encoder)
    cache = cache or Cache()
    key = fingerprint({"recipe": recipe, "data": data_version(dataset), "weights": dict(encoder_spec(encoder).source.files), "version": RECIPE_VERSION})
    splits = text_splits(recipe)
    classes = load(dataset, "test").classes
    start = time.perf_counter()
    embed = lambda texts: torch.tensor(cached_embeddings(encoder, texts, recipe.max_length, cache))  # noqa: E731
    x_train, x_val, x_test = embed(splits.train_texts), embed(splits.val_texts), embed(splits.test_texts)
    embed_seconds = time.perf_counter() - start

    def train_head() -> dict:
        set_seed(0)
        model = MLP(encoder_spec(encoder).dim, len(classes), recipe.hidden)
        t0 = time.perf_counter()
        history = fit(
            model, get_objective("ce"), TrainSet(x_train, torch.tensor(splits.train_labels)),
            config=recipe.train, seed=0, val=(x_val, torch.tensor(splits.val_labels)), desc=f"teacher {dataset}",
        )
        test_accuracy = evaluate(model, x_test, torch.tensor(splits.test_labels))
        return {"state": _cpu_state(model), "val": float(history.best_val_accuracy[0]), "test": test_accuracy, "seconds": time.perf_counter() - t0}

    entry = cache.get_or_compute("teachers", key, train_head)
    model = MLP(encoder_spec(encoder).dim, len(classes), recipe.hidden)
    model.load_state_dict(entry["state"])
    model.eval()
    return Teacher(
        f"{dataset}/{encoder}+mlp", key, model, recipe, classes, splits.train_idx, splits.val_idx,
        entry["val"], entry["test"], entry["seconds"], extra={"splits": splits, "embed_seconds_this_call": embed_seconds},
    )


# --- teachers trained on a few labels -----------------------------------------------------------------------------
EVAL_EVERY_STEPS = 10  # few-label teachers are validated about every 10 updates at the least


@dataclass(frozen=True)
class FewLabelRecipe:
    """A teacher trained on a few labelled examples L to convergence: up to ``epochs`` passes over L (more for a tiny L,
    so that every teacher gets at least ``min_steps`` updates), cosine decay, and early stopping on the labelled
    validation set V after ``patience`` epochs without a better accuracy (the best epoch is kept). The schedule scales
    with |L| (epochs, not a fixed step count), so a larger L buys a better teacher."""

    epochs: int = 40
    min_steps: int = 400
    patience: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    augment: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.min_steps < 1 or self.patience < 1:
            raise ValueError(f"epochs, min_steps and patience must be >= 1, got {self}")

    def config(self, n_labelled: int) -> TrainConfig:
        steps_per_epoch = math.ceil(n_labelled / self.batch_size)
        epochs = max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))
        every = max(1, math.ceil(EVAL_EVERY_STEPS / steps_per_epoch))  # a validation pass costs more than a tiny epoch
        patience = math.ceil(self.patience * epochs / self.epochs / every)  # the same share of a longer schedule, in validations
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, patience=patience, cosine=True,
                           epochs_per_eval=every)


def few_label_recipe(dataset: str, profile: str) -> FewLabelRecipe:
    """The few-label vision teacher of a profile (flip/crop on CIFAR-10): up to 40 epochs and at least 400 updates in
    full, 8 epochs and 60 updates in quick."""
    epochs, min_steps, patience = pick(profile, {"quick": (8, 60, 3), "full": (40, 400, 8)})
    return FewLabelRecipe(epochs=epochs, min_steps=min_steps, patience=patience, augment=dataset == "cifar10")


def few_label_vision_teacher(dataset: str, labelled: np.ndarray, recipe: FewLabelRecipe, seed: int, validation: np.ndarray,
                             cache: Cache | None = None) -> tuple[nn.Module, dict]:
    """The shared CNN architecture trained on the training-split examples ``labelled`` only, early-stopped on the
    examples ``validation`` (cached). Returns the model and its training record (epochs run, best epoch, seconds)."""
    cache = cache or Cache()
    train = load(dataset, "train")
    key = {"dataset": dataset, "data": data_version(dataset), "labelled": np.asarray(labelled), "validation": np.asarray(validation),
           "recipe": recipe, "seed": seed, "version": RECIPE_VERSION}
    config = CNNConfig(in_channels=1 if train.x.ndim == 3 else 3, num_classes=len(train.classes), **TEACHER_CNN)
    schedule = recipe.config(len(labelled))

    def train_teacher() -> dict:
        set_seed(seed)
        model = SmallCNN(config)
        start = time.perf_counter()
        history = fit(model, get_objective("ce"), TrainSet(image_inputs(dataset, train.x[labelled]), torch.tensor(train.y[labelled])),
                      config=schedule, seed=seed, val=(image_inputs(dataset, train.x[validation]), torch.tensor(train.y[validation])),
                      transforms=[FlipCrop()] if recipe.augment else [], desc=f"teacher {dataset} |L|={len(labelled)} s{seed}")
        steps_per_epoch = schedule.steps_per_epoch(len(labelled))
        return {"state": _cpu_state(model), "training": {"epochs": math.ceil(history.steps / steps_per_epoch), "planned_epochs": schedule.epochs,
                                                         "best_epoch": math.ceil(int(history.best_step[0]) / steps_per_epoch),
                                                         "seconds": time.perf_counter() - start}}

    entry = cache.get_or_compute("few_label_teachers", key, train_teacher)
    model = SmallCNN(config)
    model.load_state_dict(entry["state"])
    return model.eval(), entry["training"]


def few_label_text_teacher(inputs: torch.Tensor, labels: torch.Tensor, num_classes: int, hidden: tuple[int, ...], seed: int,
                           validation: tuple[torch.Tensor, torch.Tensor], epochs: int = 60, min_steps: int = 400, patience: int = 10,
                           cache: Cache | None = None) -> tuple[nn.Module, dict]:
    """An MLP head on frozen sentence embeddings ``inputs`` of the labelled examples, trained like
    :class:`FewLabelRecipe` (batch 32: up to ``epochs`` epochs, at least ``min_steps`` updates, early stopping on
    ``validation`` = (embeddings, labels)); cached. Returns the model and its training record."""
    cache = cache or Cache()
    steps_per_epoch = math.ceil(len(labels) / 32)
    planned = max(epochs, math.ceil(min_steps / steps_per_epoch))
    every = max(1, math.ceil(EVAL_EVERY_STEPS / steps_per_epoch))
    config = TrainConfig(epochs=planned, batch_size=32, lr=1e-3, weight_decay=1e-4, patience=math.ceil(patience * planned / epochs / every),
                         cosine=True, epochs_per_eval=every)
    key = {"inputs": inputs, "labels": labels, "hidden": hidden, "config": config, "validation": validation, "seed": seed, "version": RECIPE_VERSION}

    def train_teacher() -> dict:
        set_seed(seed)
        model = MLP(inputs.shape[1], num_classes, hidden)
        start = time.perf_counter()
        history = fit(model, get_objective("ce"), TrainSet(inputs, labels), config=config, seed=seed, val=validation,
                      desc=f"text teacher |L|={len(labels)}", progress=False)
        return {"state": _cpu_state(model), "training": {"epochs": math.ceil(history.steps / steps_per_epoch), "planned_epochs": planned,
                                                         "best_epoch": math.ceil(int(history.best_step[0]) / steps_per_epoch),
                                                         "seconds": time.perf_counter() - start}}

    entry = cache.get_or_compute("few_label_teachers", key, train_teacher)
    model = MLP(inputs.shape[1], num_classes, hidden)
    model.load_state_dict(entry["state"])
    return model.eval(), entry["training"]


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def teacher_logits(teacher: Teacher | nn.Module, inputs: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
    """A teacher's logits on ``inputs`` (already preprocessed), cached by teacher (its key, or its weights) and input."""
    cache = cache or Cache()
    identity = teacher.key if isinstance(teacher, Teacher) else fingerprint(_cpu_state(teacher))
    model = teacher.model if isinstance(teacher, Teacher) else teacher
    return cache.get_or_compute("teacher_logits", {"teacher": identity, "inputs": inputs}, lambda: predict_outputs(model, inputs))


def teacher_features(teacher: Teacher, inputs: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's logits and penultimate embeddings ``embed(x)`` on ``inputs``, cached like :func:`teacher_logits`."""
    cache = cache or Cache()
    key = {"teacher": teacher.key, "inputs": inputs, "outputs": "logits+embeddings"}

    @torch.no_grad()
    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        teacher.model.eval()
        embeddings = torch.cat([teacher.model.embed(inputs[i : i + 1024]) for i in range(0, len(inputs), 1024)])
        return teacher.model.head(embeddings), embeddings

    return cache.get_or_compute("teacher_features", key, compute)


def teacher_table(teachers: Sequence[Teacher]) -> pd.DataFrame:
    """A summary row per teacher."""
    return pd.DataFrame([t.summary() for t in teachers]).set_index("teacher")

