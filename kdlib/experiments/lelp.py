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

from dataclasses import asdict, dataclass
from typing import Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.models.stacked import StackedMLP
from kdlib.results import Record, per_seed_differences, welch_difference
from kdlib.tasks import SubclassTask, subclass_text_task, subclass_vision_task
from kdlib.train import TrainConfig, TrainSet, accuracy, fit, set_seed

EXPERIMENT_VERSION = 2
vision_task, text_task = subclass_vision_task, subclass_text_task


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


def objective_spec(task: SubclassTask, variant: Variant, seed: int) -> dict:
    """The registered objective (name and parameters) of a variant on the task's transfer set."""
    probs = torch.softmax(task.logits_transfer / variant.temperature, dim=1)
    teacher = {"teacher_logits": task.logits_transfer, "temperature": variant.temperature}
    fit_data = {"embeddings": task.embeddings_transfer, "fit_embeddings": task.embeddings_fit, "fit_labels": task.y_fit}
    specs = {
        "labels only": lambda: {"name": "class_targets", "targets": torch.nn.functional.one_hot(task.y_transfer, task.num_classes).float()},
        "vanilla KD": lambda: {"name": "class_targets", "targets": probs},
        "head-matched KD": lambda: {"name": "class_targets", "targets": probs},
        "LELP": lambda: {"name": "lelp", **teacher, **fit_data, "head_weight": task.head_weight, "subclasses": variant.subclasses,
                         "beta": variant.beta, "seed": seed},
        "LELP w/o null space": lambda: {**specs["LELP"](), "null_space": False},
        "random projections": lambda: {**specs["LELP"](), "directions": "random"},
        "uniform split": lambda: {"name": "uniform_split", **teacher, "subclasses": variant.subclasses},
        "k-means": lambda: {"name": "kmeans_subclasses", **teacher, **fit_data, "subclasses": variant.subclasses, "seed": seed},
        "oracle subclasses": lambda: _oracle_spec(task, variant, teacher, fit_data),
    }
    if variant.method not in specs:
        raise ValueError(f"unknown method {variant.method!r}; available: {', '.join(METHODS)}")
    return specs[variant.method]()


def _oracle_spec(task: SubclassTask, variant: Variant, teacher: dict, fit_data: dict) -> dict:
    """True fine labels for an example's own class; the nearest true-subclass centroid for the other classes."""
    if task.fine_fit is None:
        raise ValueError(f"task {task.name!r} has no finer labels for oracle subclasses")
    return {"name": "oracle_subclasses", **teacher, **fit_data, "labels": task.y_transfer, "fine": task.fine_transfer, "fit_fine": task.fine_fit,
            "subclasses": variant.subclasses}


METHODS = ("labels only", "vanilla KD", "head-matched KD", "LELP", "LELP w/o null space", "random projections", "uniform split", "k-means",
           "oracle subclasses")


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
        objectives = [get_objective(**objective_spec(task, variant, seed)) for variant in variants]
        set_seed(seed)
        model = StackedMLP(task.in_dim, recipe.hidden, task.num_classes, [v.subclasses for v in variants], seed)
        history = fit(model, objectives, TrainSet(task.x_transfer, task.y_transfer), config=recipe.train, seed=seed, val=(task.x_val, task.y_val),
                      progress=False)
        test = accuracy(model, task.x_test, task.y_test)
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
