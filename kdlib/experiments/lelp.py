"""Notebook 01 (LELP): few-class distillation tasks, the compared subclass targets, and the selection protocol.

A :class:`SubclassTask` holds a trained teacher's outputs on a *transfer set* (the student's only training signal),
the teacher's embeddings of its own training examples (to fit projections and clusters), a labelled validation
split (early stopping and every hyper-parameter choice) and the test split (reported, never selected on).

Every method trains the same MLP student from scratch on the transfer set with one cross-entropy (alpha = 0):

* class-level targets on C outputs: labels only, vanilla KD (teacher at temperature tau);
* class-level targets on a C*S head: head-matched KD (the subclass head, trained on KD's class probabilities);
* subclass targets on a C*S head: LELP, LELP without the null-space step, random projections, the uniform split,
  k-means pseudo-subclasses, oracle subclasses (true fine labels).

Protocol (:func:`run_experiment`), chosen on validation accuracy averaged over seeds:
stage 1 picks vanilla KD's tau; stage 2 sweeps S (and beta) at that tau for the subclass methods; stage 3 runs
the controls that isolate LELP's projections (random directions, no null space) at LELP's chosen S over the beta grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kdlib.cache import Cache, fingerprint
from kdlib.data import load
from kdlib.distill.lelp import fit_projection, lelp_targets
from kdlib.distill.subclass import assignment_targets, class_centroids, kmeans_centroids, nearest_centroid, subclass_targets
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.models import bag_of_tokens, build_vocabulary, cached_embeddings, load_tokenizer
from kdlib.stacked import Inputs, StackedMLP, class_cross_entropy, fit_stacked, stacked_accuracy, subclass_cross_entropy
from kdlib.teachers import LABEL_MAPS, image_inputs, teacher_features, text_teacher, vision_teacher
from kdlib.train import TrainConfig

EXPERIMENT_VERSION = 1


@dataclass
class SubclassTask:
    """A teacher's view of a few-class task, and the student's data."""

    name: str
    classes: tuple[str, ...]
    teacher_name: str
    teacher_test_accuracy: float
    x_transfer: Inputs
    y_transfer: torch.Tensor  # true labels of the transfer set (used only by the "labels only" baseline)
    logits_transfer: torch.Tensor
    embeddings_transfer: torch.Tensor
    x_val: Inputs
    y_val: torch.Tensor
    x_test: Inputs
    y_test: torch.Tensor
    embeddings_fit: torch.Tensor  # teacher embeddings of (a sample of) its training set, with their true labels
    y_fit: torch.Tensor
    head_weight: torch.Tensor
    fine_transfer: torch.Tensor | None = None  # oracle subclass (index within its class) where a finer label exists
    fine_fit: torch.Tensor | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_fine(self) -> int | None:
        return None if self.fine_fit is None else int(self.fine_fit.max()) + 1

    @property
    def in_dim(self) -> int:
        return self.x_transfer.shape[1]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint({k: v for k, v in self.__dict__.items() if k != "_fingerprint"} | {"version": EXPERIMENT_VERSION})
        return self._fingerprint

    def summary(self) -> dict:
        return {
            "task": self.name,
            "classes": self.num_classes,
            "teacher": self.teacher_name,
            "teacher test acc": self.teacher_test_accuracy,
            "transfer": self.x_transfer.shape[0],
            "student input dim": self.in_dim,
            "val": len(self.y_val),
            "test": len(self.y_test),
            "oracle subclasses": self.num_fine or "-",
        }


def _sample(indices: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    if n > len(indices):
        raise ValueError(f"asked for {n} examples from a pool of {len(indices)}")
    return np.random.default_rng(seed).permutation(indices)[:n]


def vision_task(dataset: str, labels: str, profile: str, n_transfer: int, n_fit: int, n_val: int, cache: Cache | None = None) -> SubclassTask:
    """A binarised (``labels="mod2"``) or original (``"fine"``) image task; the student reads flattened pixels.

    The transfer set is the first ``n_transfer`` of ``n_fit`` examples sampled from the teacher's training subset.
    """
    teacher = vision_teacher(dataset, profile, labels, cache)
    train, test = load(dataset, "train"), load(dataset, "test")
    relabel = LABEL_MAPS[labels]
    fit_idx = _sample(teacher.train_idx, max(n_fit, n_transfer))
    val_idx = teacher.val_idx[:n_val]
    fit_inputs = image_inputs(dataset, train.x[fit_idx])
    logits_fit, embeddings_fit = teacher_features(teacher, fit_inputs, cache)
    flat = lambda images: image_inputs(dataset, images).flatten(1)  # noqa: E731
    fine = (lambda y: torch.tensor(y // 2)) if labels == "mod2" else None  # fine class 2s + c is subclass s of class c
    return SubclassTask(
        name=f"{dataset} ({'y mod 2' if labels == 'mod2' else '10 classes'})",
        classes=teacher.classes,
        teacher_name=teacher.name,
        teacher_test_accuracy=teacher.test_accuracy,
        x_transfer=fit_inputs[:n_transfer].flatten(1),
        y_transfer=torch.tensor(relabel(train.y[fit_idx[:n_transfer]])),
        logits_transfer=logits_fit[:n_transfer],
        embeddings_transfer=embeddings_fit[:n_transfer],
        x_val=flat(train.x[val_idx]),
        y_val=torch.tensor(relabel(train.y[val_idx])),
        x_test=flat(test.x),
        y_test=torch.tensor(relabel(test.y)),
        embeddings_fit=embeddings_fit,
        y_fit=torch.tensor(relabel(train.y[fit_idx])),
        head_weight=teacher.model.head.weight.detach(),
        fine_transfer=fine(train.y[fit_idx[:n_transfer]]) if fine else None,
        fine_fit=fine(train.y[fit_idx]) if fine else None,
    )


def text_task(dataset: str, profile: str, n_transfer: int, n_fit: int, vocabulary_size: int, cache: Cache | None = None) -> SubclassTask:
    """A sentence-encoder teacher's task; the student reads a bag of the transfer set's most frequent tokens."""
    teacher = text_teacher(dataset, profile, cache=cache)
    splits, recipe = teacher.extra["splits"], teacher.recipe
    sentence = lambda texts: torch.tensor(cached_embeddings(recipe.encoder, texts, recipe.max_length, cache))  # noqa: E731
    fit_pos = _sample(np.arange(len(splits.train_texts)), max(n_fit, n_transfer))
    train_sentences = sentence(splits.train_texts)  # cached with the teacher
    logits_fit, embeddings_fit = teacher_features(teacher, train_sentences[fit_pos], cache)
    transfer_texts = [splits.train_texts[i] for i in fit_pos[:n_transfer]]
    tokenizer = load_tokenizer(recipe.encoder)
    vocabulary = build_vocabulary(tokenizer, transfer_texts, vocabulary_size)
    bag = lambda texts: bag_of_tokens(tokenizer, texts, vocabulary)  # noqa: E731
    return SubclassTask(
        name=dataset,
        classes=teacher.classes,
        teacher_name=teacher.name,
        teacher_test_accuracy=teacher.test_accuracy,
        x_transfer=bag(transfer_texts),
        y_transfer=torch.tensor(splits.train_labels[fit_pos[:n_transfer]]),
        logits_transfer=logits_fit[:n_transfer],
        embeddings_transfer=embeddings_fit[:n_transfer],
        x_val=bag(splits.val_texts),
        y_val=torch.tensor(splits.val_labels),
        x_test=bag(splits.test_texts),
        y_test=torch.tensor(splits.test_labels),
        embeddings_fit=embeddings_fit,
        y_fit=torch.tensor(splits.train_labels[fit_pos]),
        head_weight=teacher.model.head.weight.detach(),
    )


# --- the compared targets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One method with its hyper-parameters: S subclass slots per class, subclass temperature beta, teacher tau."""

    method: str
    subclasses: int = 1
    beta: float | None = None
    temperature: float = 1.0

    @property
    def label(self) -> str:
        parts = [f"S={self.subclasses}"] if self.subclasses > 1 else []
        parts += [f"beta={self.beta:g}"] if self.beta is not None else []
        parts += [f"tau={self.temperature:g}"] if self.method != "labels only" else []
        return ", ".join(parts) or "-"


TargetBuilder = Callable[[SubclassTask, Variant, int], torch.Tensor]


def _teacher_probs(task: SubclassTask, variant: Variant) -> torch.Tensor:
    return torch.softmax(task.logits_transfer / variant.temperature, dim=1)


def _projection_targets(null_space: bool, directions: str) -> TargetBuilder:
    def build(task: SubclassTask, variant: Variant, seed: int) -> torch.Tensor:
        projection = fit_projection(
            task.embeddings_fit, task.y_fit, task.head_weight, variant.subclasses, null_space=null_space, directions=directions, seed=seed
        )
        return lelp_targets(task.logits_transfer, task.embeddings_transfer, projection, variant.temperature, variant.beta)

    return build


def _kmeans_targets(task: SubclassTask, variant: Variant, seed: int) -> torch.Tensor:
    centroids = kmeans_centroids(task.embeddings_fit, task.y_fit, task.num_classes, variant.subclasses, seed)
    return assignment_targets(_teacher_probs(task, variant), nearest_centroid(task.embeddings_transfer, centroids), variant.subclasses)


def _oracle_targets(task: SubclassTask, variant: Variant, seed: int) -> torch.Tensor:
    """True fine labels for an example's own class; the nearest true-subclass centroid for the other classes."""
    if task.fine_fit is None:
        raise ValueError(f"task {task.name!r} has no finer labels for oracle subclasses")
    centroids = class_centroids(task.embeddings_fit, task.y_fit, task.fine_fit, task.num_classes, variant.subclasses)
    assignment = nearest_centroid(task.embeddings_transfer, centroids)
    assignment[torch.arange(len(assignment)), task.y_transfer] = task.fine_transfer
    return assignment_targets(_teacher_probs(task, variant), assignment, variant.subclasses)


CLASS_TARGETS: dict[str, TargetBuilder] = {
    "labels only": lambda task, variant, seed: torch.nn.functional.one_hot(task.y_transfer, task.num_classes).float(),
    "vanilla KD": lambda task, variant, seed: _teacher_probs(task, variant),
    "head-matched KD": lambda task, variant, seed: _teacher_probs(task, variant),
}
SUBCLASS_TARGETS: dict[str, TargetBuilder] = {
    "LELP": _projection_targets(null_space=True, directions="pca"),
    "LELP w/o null space": _projection_targets(null_space=False, directions="pca"),
    "random projections": _projection_targets(null_space=True, directions="random"),
    "uniform split": lambda task, variant, seed: subclass_targets(
        _teacher_probs(task, variant), torch.zeros(len(task.logits_transfer), task.num_classes, variant.subclasses), math.inf
    ),
    "k-means": _kmeans_targets,
    "oracle subclasses": _oracle_targets,
}
METHODS = tuple(CLASS_TARGETS) + tuple(SUBCLASS_TARGETS)


def build_targets(task: SubclassTask, variant: Variant, seed: int) -> tuple[torch.Tensor, bool]:
    """The (N, C) class or (N, C, S) subclass targets of a variant on the transfer set, and whether they are subclass-level."""
    if variant.method in CLASS_TARGETS:
        return CLASS_TARGETS[variant.method](task, variant, seed), False
    if variant.method in SUBCLASS_TARGETS:
        return SUBCLASS_TARGETS[variant.method](task, variant, seed), True
    raise ValueError(f"unknown method {variant.method!r}; available: {', '.join(METHODS)}")


# --- training -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudentRecipe:
    """The MLP student (one hidden layer) and its optimisation."""

    hidden: int
    train: TrainConfig


def train_students(task: SubclassTask, variants: Sequence[Variant], seed: int, recipe: StudentRecipe, cache: Cache | None = None) -> pd.DataFrame:
    """Train one student per variant (stacked, same initialisation and batches); cached per (task, variants, seed)."""
    if not variants:
        raise ValueError("no variants to train")
    key = {"task": task.fingerprint(), "variants": [asdict(v) for v in variants], "seed": seed, "recipe": recipe}

    def compute() -> list[dict]:
        max_s = max(v.subclasses for v in variants)
        targets = torch.zeros(len(variants), task.x_transfer.shape[0], task.num_classes, max_s)
        subclass_level = torch.zeros(len(variants), dtype=torch.bool)
        for m, variant in enumerate(variants):
            t, subclass_level[m] = build_targets(task, variant, seed)
            targets[m, :, :, : t.shape[2] if t.ndim == 3 else 1] = t if t.ndim == 3 else t[:, :, None]

        def loss(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            batch = targets[:, idx]
            return torch.where(subclass_level, subclass_cross_entropy(logits, batch), class_cross_entropy(logits, batch.sum(-1)))

        model = StackedMLP(task.in_dim, recipe.hidden, task.num_classes, [v.subclasses for v in variants], seed)
        history = fit_stacked(model, loss, task.x_transfer, val=(task.x_val, task.y_val), config=recipe.train, seed=seed, progress=False)
        test = stacked_accuracy(model, task.x_test, task.y_test)
        return [
            {**asdict(v), "setting": v.label, "seed": seed, "val_accuracy": float(history.best_val_accuracy[m]),
             "test_accuracy": float(test[m]), "best_step": int(history.best_step[m]), "steps": history.steps}
            for m, v in enumerate(variants)
        ]

    return pd.DataFrame((cache or Cache()).get_or_compute("lelp_students", key, compute))


@dataclass(frozen=True)
class Grid:
    """The hyper-parameter grids searched on validation."""

    temperatures: tuple[float, ...]
    subclasses: tuple[int, ...]
    betas: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.temperatures or not self.subclasses or not self.betas:
            raise ValueError("every grid must be non-empty")
        if min(self.temperatures) <= 0 or min(self.betas) <= 0 or min(self.subclasses) < 2:
            raise ValueError(f"need temperatures > 0, betas > 0 and S >= 2, got {self}")


def select(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method, the setting with the highest validation accuracy averaged over seeds (its per-seed rows)."""
    mean_val = runs.groupby(["method", "setting"], sort=False)["val_accuracy"].mean().reset_index()
    best = mean_val.loc[mean_val.groupby("method", sort=False)["val_accuracy"].idxmax(), ["method", "setting"]]
    return runs.merge(best, on=["method", "setting"])


def run_experiment(task: SubclassTask, grid: Grid, seeds: Sequence[int], recipe: StudentRecipe, cache: Cache | None = None) -> pd.DataFrame:
    """All runs of the three-stage protocol (see the module docstring), one row per (variant, seed)."""
    if not seeds:
        raise ValueError("need at least one seed")

    def stage(name: str, variants: list[Variant]) -> pd.DataFrame:
        frames = [train_students(task, variants, seed, recipe, cache) for seed in tqdm(seeds, desc=f"{task.name}: {name}", leave=False)]
        return pd.concat(frames, ignore_index=True).assign(stage=name)

    first = stage("1 labels / KD", [Variant("labels only")] + [Variant("vanilla KD", temperature=t) for t in grid.temperatures])
    tau = float(select(first).query("method == 'vanilla KD'")["temperature"].iloc[0])
    sweep = [Variant(m, s, temperature=tau) for s in grid.subclasses for m in ("head-matched KD", "uniform split", "k-means")]
    sweep += [Variant("LELP", s, b, tau) for s in grid.subclasses for b in grid.betas]
    if task.fine_fit is not None:
        sweep.append(Variant("oracle subclasses", task.num_fine, temperature=tau))
    second = stage("2 S sweep", sweep)
    chosen_s = int(select(second).query("method == 'LELP'")["subclasses"].iloc[0])
    controls = [Variant(m, chosen_s, b, tau) for m in ("random projections", "LELP w/o null space") for b in grid.betas]
    third = stage("3 controls", controls)
    return pd.concat([first, second, third], ignore_index=True).assign(task=task.name)


# --- reporting ------------------------------------------------------------------------------------------------
SELECTED = "validation-selected"


def selected_records(runs: pd.DataFrame) -> list[Record]:
    """Test and validation accuracy of every method's validation-selected setting, per task and seed.

    The records' ``setting`` is :data:`SELECTED` for every method, so seeds pair across methods.
    """
    records = []
    for _task, task_runs in runs.groupby("task", sort=False):
        for row in select(task_runs).itertuples():
            for metric in ("test_accuracy", "val_accuracy"):
                records.append(Record(row.task, row.method, SELECTED, int(row.seed), metric, float(getattr(row, metric))))
    return records


def chosen_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """The setting validation chose for each task and method (rows: task, columns: method)."""
    chosen = pd.concat([select(r).drop_duplicates(["method"]).assign(task=t) for t, r in runs.groupby("task", sort=False)])
    return chosen.pivot(index="task", columns="method", values="setting").reindex(columns=[m for m in METHODS if m in set(chosen.method)])


def accuracy_by_subclasses(runs: pd.DataFrame) -> pd.DataFrame:
    """Stage-2 test accuracy against S, beta chosen on validation separately for each (task, method, S)."""
    sweep = runs[runs.stage == "2 S sweep"]
    parts = [select(group).assign(task=task, S=s) for (task, s), group in sweep.groupby(["task", "subclasses"], sort=False)]
    return pd.concat(parts, ignore_index=True)


def gain_shrinks(records: Sequence[Record], few_class: Sequence[str], many_class: str, method: str = "LELP", baseline: str = "vanilla KD") -> dict:
    """Does ``method - baseline`` shrink from the few-class tasks to ``many_class``? Welch 95% CI of the change."""
    few = per_seed_differences(records, method, baseline, few_class)
    many = per_seed_differences(records, method, baseline, [many_class])
    change = welch_difference(few, many)
    return {"few_class_gain": few.mean(), "many_class_gain": many.mean(), "shrink": change["difference"], "ci_low": change["ci_low"], "ci_high": change["ci_high"]}


def validation_landscape(runs: pd.DataFrame, method: str = "LELP") -> pd.DataFrame:
    """How flat ``method``'s hyper-parameter grid is on validation, per task.

    Columns: the chosen setting, the spread (best minus worst) of the seed-mean validation accuracy over the grid,
    how many settings lie within one median seed std of the best (a flat top makes the choice a coin toss among
    them), and that median std over seeds of one setting (pp).
    """
    rows = []
    for task, group in runs[runs.method == method].groupby("task", sort=False):
        per_setting = group.groupby("setting")["val_accuracy"].agg(["mean", "std"])
        noise = per_setting["std"].median()
        rows.append(
            {
                "task": task,
                "settings": len(per_setting),
                "chosen": per_setting["mean"].idxmax(),
                "val spread over grid (pp)": 100 * (per_setting["mean"].max() - per_setting["mean"].min()),
                "within one std of the best": int((per_setting["mean"] >= per_setting["mean"].max() - noise).sum()),
                "median seed std (pp)": 100 * noise,
            }
        )
    return pd.DataFrame(rows).set_index("task")
