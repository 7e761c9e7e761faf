"""Notebook 01 (LELP): few-class distillation tasks, the compared subclass targets, and the selection protocol.

A :class:`~kdlib.tasks.SubclassTask` holds a trained teacher's outputs on a *transfer set* (the student's only
training signal), the teacher's embeddings of its own training examples (to fit projections and clusters), a
labelled validation split (early stopping and every hyper-parameter choice) and the test split (reported, never
selected on). Students are convolutional (a small CNN on images, a token CNN on word pieces), stacked through the
engine: every variant of a cell trains in one stack, from the same initial weights and batches.

Every method trains the same student from scratch on the transfer set with one cross-entropy (alpha = 0):

* class-level targets on C outputs: labels only, vanilla KD (teacher at temperature tau);
* class-level targets on a C*S head: head-matched KD (the subclass head, trained on KD's class probabilities);
* subclass targets on a C*S head: LELP, LELP without the null-space step, random projections, the uniform split,
  k-means pseudo-subclasses, and two oracles built from the true fine labels (own class: the true subclass; the other
  class: its nearest true-subclass centroid, or its mass spread evenly over its slots).

Protocol, fixed before the main run: on one *selection* replicate, stage ``tau`` picks vanilla KD's temperature and
stage ``sweep`` picks LELP's S and beta at that tau (best validation accuracy). The other methods are LELP's
ablations at its chosen setting: head-matched KD, the uniform split and k-means at LELP's S, random projections and
LELP without the null space at LELP's S and beta, the oracles at the true number of subclasses, all at KD's tau.
The pilot replicates (KD and LELP only: the power rule's spread) and the main replicates train the chosen variants.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from kdlib.distill import get_objective
from kdlib.distill.subclass import split_entropy
from kdlib.grid import run_grid
from kdlib.profiles import pick
from kdlib.results import Record, paired_estimates
from kdlib.tasks import SubclassTask, subclass_text_task, subclass_vision_task
from kdlib.teachers import vision_teacher
from kdlib.train import TrainConfig, TrainSet, accuracy, fit, set_seed

PROTOCOL_VERSION = 3  # bump when a choice the cells' arguments do not name changes
ORACLE_UNIFORM, ORACLE_CENTROID = "oracle, uniform other class", "oracle, nearest other centroid"
METHODS = ("labels only", "vanilla KD", "head-matched KD", "LELP", "LELP w/o null space", "random projections", "uniform split", "k-means",
           ORACLE_UNIFORM, ORACLE_CENTROID)
SUBCLASS_METHODS = METHODS[3:]
BETA_METHODS = ("LELP", "LELP w/o null space", "random projections")
SELECTION_SEED = 1000  # the replicate that chooses tau, S and beta (never reused in a claim)
PILOT_SEEDS = (1001, 1002, 1003)  # the pilot's replicates at the chosen settings (the power rule's spread; never reused)
PILOT_METHODS = ("vanilla KD", "LELP")
TEXT_METHODS = ("labels only", "vanilla KD", "head-matched KD", "LELP", "random projections", "uniform split")  # fewer: a secondary setting
MANY_CLASS_METHODS = ("vanilla KD", "head-matched KD", "LELP")
WHOLE_METHODS = ("vanilla KD", "head-matched KD", "LELP", "uniform split", ORACLE_UNIFORM)  # the claims' methods at 45k
WHOLE = "whole training set"  # the tag of the task whose transfer set is the teacher's whole training set
STUDENT_CNN_LELP = {"widths": (8, 16, 32), "embed_dim": 32}  # chosen by benchmarks/lelp_probe.py (see the notebook's section 1)


# --- the compared targets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One method with its hyper-parameters: S subclass slots per class, subclass temperature beta, teacher tau."""

    method: str
    subclasses: int = 1
    beta: float | None = None
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; available: {', '.join(METHODS)}")
        if (self.beta is None) == (self.method in BETA_METHODS):
            raise ValueError(f"{self.method!r} {'needs' if self.method in BETA_METHODS else 'takes no'} beta, got {self.beta}")
        if (self.subclasses > 1) != (self.method in SUBCLASS_METHODS or self.method == "head-matched KD"):
            raise ValueError(f"{self.method!r} with S = {self.subclasses}: subclass heads need S >= 2, class heads S = 1")

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
    lelp = {"name": "lelp", **teacher, **fit_data, "head_weight": task.head_weight, "subclasses": variant.subclasses, "beta": variant.beta,
            "seed": seed}
    if variant.method in (ORACLE_UNIFORM, ORACLE_CENTROID) and task.fine_fit is None:
        raise ValueError(f"task {task.name!r} has no finer labels for oracle subclasses")
    specs = {
        "labels only": lambda: {"name": "class_targets", "targets": torch.nn.functional.one_hot(task.y_transfer, task.num_classes).float()},
        "vanilla KD": lambda: {"name": "class_targets", "targets": probs},
        "head-matched KD": lambda: {"name": "class_targets", "targets": probs},
        "LELP": lambda: lelp,
        "LELP w/o null space": lambda: {**lelp, "null_space": False},
        "random projections": lambda: {**lelp, "directions": "random"},
        "uniform split": lambda: {"name": "uniform_split", **teacher, "subclasses": variant.subclasses},
        "k-means": lambda: {"name": "kmeans_subclasses", **teacher, **fit_data, "subclasses": variant.subclasses, "seed": seed},
        ORACLE_CENTROID: lambda: {"name": "oracle_subclasses", **teacher, **fit_data, "labels": task.y_transfer, "fine": task.fine_transfer,
                                  "fit_fine": task.fine_fit, "subclasses": variant.subclasses},
        ORACLE_UNIFORM: lambda: {"name": "oracle_uniform_other", **teacher, "labels": task.y_transfer, "fine": task.fine_transfer,
                                 "subclasses": variant.subclasses},
    }
    return specs[variant.method]()


# --- tasks and the grid cell ------------------------------------------------------------------------------------
@lru_cache(maxsize=8)  # a replicate's tasks with their own teachers; the largest (45k CIFAR images) holds about 0.7 GB
def _build(spec_json: str) -> SubclassTask:
    spec = json.loads(spec_json)
    if spec["kind"] == "vision":
        task = subclass_vision_task(spec["dataset"], spec["labels"], spec["teachers"], spec["n_transfer"], spec["n_fit"], spec["n_val"],
                                    student={k: tuple(v) if isinstance(v, list) else v for k, v in spec["student"].items()},
                                    teacher_seed=spec.get("teacher_seed", 0))
    elif spec["kind"] == "text":
        task = subclass_text_task(spec["dataset"], spec["teachers"], spec["n_transfer"], spec["n_fit"], spec["vocabulary"], student=spec["student"])
    else:
        raise ValueError(f"task kind must be 'vision' or 'text', got {spec['kind']!r}")
    return replace(task, name=f"{task.name}, {spec['tag']}") if spec.get("tag") else task


def build_task(spec: Mapping[str, Any]) -> SubclassTask:
    """The task a plain-data spec names (built once per process; teachers and features come from the cache). A spec's
    ``tag`` is appended to the task's name (two transfer-set sizes of one dataset); ``teacher_seed`` picks a retrained
    teacher (vision only; 0, the default, is the shared one)."""
    return _build(json.dumps(dict(spec), sort_keys=True))


def train_cell(spec: dict, variants: list[dict], seed: int, train: dict) -> list[dict]:
    """One grid cell: every variant's student on one task and replicate, as one stack; one row per variant with its
    validation / test accuracy, best step and the normalised entropy of its targets' within-class split."""
    if not variants:
        raise ValueError("no variants to train")
    task = build_task(spec)
    chosen = [Variant(**v) for v in variants]
    objectives = [get_objective(**objective_spec(task, v, seed)) for v in chosen]
    set_seed(seed)
    stack = task.make_stack([v.subclasses for v in chosen], seed)
    history = fit(stack, objectives, TrainSet(task.x_transfer, task.y_transfer), config=TrainConfig(**train), seed=seed,
                  val=(task.x_val, task.y_val), desc=f"{task.name} s{seed}", progress=False)
    test = accuracy(stack, task.x_test, task.y_test)
    rows = []
    for m, (variant, objective) in enumerate(zip(chosen, objectives)):
        targets = objective.targets
        entropy = split_entropy(targets) if targets.ndim == 3 and targets.shape[2] > 1 else math.nan
        rows.append({"task": task.name, **asdict(variant), "setting": variant.label, "val_accuracy": float(history.best_val_accuracy[m]),
                     "test_accuracy": float(test[m]), "best_step": int(history.best_step[m]), "steps": int(history.steps),
                     "split_entropy": entropy, "seconds": float(history.seconds)})
    return rows


# --- the profile's settings -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """The hyper-parameter grids searched on the selection replicate's validation accuracy."""

    temperatures: tuple[float, ...]
    subclasses: tuple[int, ...]
    betas: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.temperatures or not self.subclasses or not self.betas:
            raise ValueError("every grid must be non-empty")
        if min(self.temperatures) <= 0 or min(self.betas) <= 0 or min(self.subclasses) < 2:
            raise ValueError(f"need temperatures > 0, betas > 0 and S >= 2, got {self}")


@dataclass(frozen=True)
class TaskPlan:
    """One task of the notebook: its spec, its students' optimisation, and the methods it runs."""

    spec: Mapping[str, Any]
    train: Mapping[str, Any]
    methods: tuple[str, ...]
    settings_from: str | None = None  # a task that takes another task's chosen settings instead of a selection of its own
    retrain_teacher: bool = False  # main replicate r trains on its own teacher (seed r); selection and pilot use the shared one

    @property
    def key(self) -> str:
        return " ".join([self.spec["dataset"], self.spec.get("labels", "text")] + ([self.spec["tag"]] if self.spec.get("tag") else []))

    def replicate_spec(self, seed: int, main: bool) -> dict:
        """The spec of one replicate: with its own teacher where the plan retrains teachers and the run is the main one."""
        return {**self.spec, "teacher_seed": int(seed)} if main and self.retrain_teacher and seed else dict(self.spec)


@dataclass(frozen=True)
class LelpSettings:
    """The numbers of one profile: the tasks, the grid, the replicates."""

    tasks: tuple[TaskPlan, ...]
    grid: Grid
    replicates: int
    pilot_seeds: tuple[int, ...]


def settings(profile: str, replicates: int) -> LelpSettings:
    """The settings of ``profile``; ``replicates`` is the declared number (the quick profile runs 2).

    Binarised CIFAR-10 is the main task: a transfer set of 10,000 images with every method, and the teacher's whole
    training set (45,000) with the methods that carry the claims, at the 10k task's chosen settings; each main
    replicate retrains its teacher there. Vision students train for about 2,300 (10k) and 2,800 (45k) steps.
    """
    train = lambda epochs: dict(epochs=epochs, batch_size=128, lr=3e-3, weight_decay=1e-4, patience=None, cosine=True)  # noqa: E731
    vision_train, whole_train, text_train = pick(profile, {"quick": (train(2), train(1), train(2)), "full": (train(30), train(8), train(10))})
    sizes = pick(profile, {"quick": dict(n_transfer=1000, n_whole=2000, n_fit=1500, n_val=500, text_transfer=800, vocabulary=2000),
                           "full": dict(n_transfer=10_000, n_whole=45_000, n_fit=20_000, n_val=2000, text_transfer=20_000, vocabulary=8000)})
    vision = lambda dataset, labels, **extra: {"kind": "vision", "dataset": dataset, "labels": labels, "teachers": profile,  # noqa: E731
                                               "n_transfer": sizes["n_transfer"], "n_fit": sizes["n_fit"], "n_val": sizes["n_val"],
                                               "student": dict(STUDENT_CNN_LELP), **extra}
    text = {"kind": "text", "dataset": "sst2", "teachers": profile, "n_transfer": sizes["text_transfer"], "n_fit": sizes["text_transfer"],
            "vocabulary": sizes["vocabulary"], "student": {"embed_dim": 32, "filters": 64, "hidden": 32, "kernel": 3}}
    tasks = (
        TaskPlan(vision("cifar10", "mod2"), vision_train, METHODS, retrain_teacher=True),
        TaskPlan(vision("cifar10", "mod2", n_transfer=sizes["n_whole"], tag=WHOLE), whole_train, WHOLE_METHODS, settings_from="cifar10 mod2",
                 retrain_teacher=True),
        TaskPlan(vision("fashion_mnist", "mod2"), vision_train, METHODS),
        TaskPlan(text, text_train, TEXT_METHODS),
        TaskPlan(vision("fashion_mnist", "fine"), vision_train, MANY_CLASS_METHODS, settings_from="fashion_mnist mod2"),
    )
    grid = pick(profile, {"quick": Grid(temperatures=(1.0, 4.0), subclasses=(2,), betas=(0.25, 1.0)),
                          "full": Grid(temperatures=(1.0, 2.0, 4.0), subclasses=(5, 10), betas=(0.0625, 0.25, 1.0, 4.0))})
    return LelpSettings(tasks, grid, pick(profile, {"quick": 2, "full": replicates}), PILOT_SEEDS[:pick(profile, {"quick": 2, "full": 3})])


# --- selection ---------------------------------------------------------------------------------------------------
def select(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (task, method), the setting with the highest validation accuracy averaged over its rows' seeds."""
    mean_val = runs.groupby(["task", "method", "setting"], sort=False)["val_accuracy"].mean().reset_index()
    best = mean_val.loc[mean_val.groupby(["task", "method"], sort=False)["val_accuracy"].idxmax(), ["task", "method", "setting"]]
    return runs.merge(best, on=["task", "method", "setting"])


def _chosen(runs: pd.DataFrame, method: str) -> pd.Series:
    return select(runs[runs.method == method]).iloc[0]


def stage_variants(plan: TaskPlan, grid: Grid, stage: str, earlier: pd.DataFrame | None = None) -> list[dict]:
    """The variants of one selection stage: ``tau`` (labels only and vanilla KD over the temperatures), then ``sweep``
    (LELP over S x beta at the tau chosen in ``earlier``, this task's rows of the first stage)."""
    if stage == "tau":
        labels = [Variant("labels only")] if "labels only" in plan.methods else []
        return [asdict(v) for v in labels + [Variant("vanilla KD", temperature=t) for t in grid.temperatures]]
    if stage == "sweep":
        tau = float(_chosen(earlier, "vanilla KD").temperature)
        return [asdict(Variant("LELP", s, b, tau)) for s in grid.subclasses for b in grid.betas]
    raise ValueError(f"stage must be 'tau' or 'sweep', got {stage!r}")


def chosen_variants(selection: pd.DataFrame, methods: Sequence[str], num_fine: int | None) -> list[dict]:
    """Every method's variant from the selection replicate's choices (one task's rows): KD's tau for all, LELP's S and
    beta for its ablations, the true number of subclasses for the oracles."""
    tau = float(_chosen(selection, "vanilla KD").temperature)
    best = _chosen(selection, "LELP")
    s, beta = int(best.subclasses), float(best.beta)
    variants = {
        "labels only": Variant("labels only"), "vanilla KD": Variant("vanilla KD", temperature=tau),
        "head-matched KD": Variant("head-matched KD", s, temperature=tau), "uniform split": Variant("uniform split", s, temperature=tau),
        "k-means": Variant("k-means", s, temperature=tau),
        **{m: Variant(m, s, beta, tau) for m in BETA_METHODS},
        **({m: Variant(m, num_fine, temperature=tau) for m in (ORACLE_UNIFORM, ORACLE_CENTROID)} if num_fine else {}),
    }
    return [asdict(variants[m]) for m in methods]


def transferred_variants(chosen: list[dict], methods: Sequence[str]) -> list[dict]:
    """The variants of a task that takes another task's chosen settings (same S, beta and tau)."""
    by_method = {v["method"]: v for v in chosen}
    return [by_method[m] for m in methods]


def cells(plan: TaskPlan, variants: list[dict], seeds: Sequence[int], main: bool = False) -> list[dict]:
    """The grid cells of one task: one per seed, every variant in one stack (``main``: the replicates that retrain
    their teacher where the plan says so)."""
    return [{"spec": plan.replicate_spec(seed, main), "variants": variants, "seed": int(seed), "train": dict(plan.train)} for seed in seeds]


def _grid(experiment: str, plan: TaskPlan, variants: list[dict], seeds: Sequence[int], progress: bool, main: bool = False) -> pd.DataFrame:
    context = {"version": PROTOCOL_VERSION, "task": build_task(plan.spec).fingerprint()}  # the teacher and the data, beyond the spec
    frame = run_grid(train_cell, experiment=experiment, cells=cells(plan, variants, seeds, main), context=context, progress=progress)
    return frame.drop(columns=["spec", "variants", "train"])


def run_selection(chosen: LelpSettings, progress: bool = True) -> pd.DataFrame:
    """The three selection stages on the selection replicate, for every task that selects its own settings."""
    frames = []
    for plan in chosen.tasks:
        if plan.settings_from is not None:
            continue
        earlier = None
        for stage in ("tau", "sweep"):
            variants = stage_variants(plan, chosen.grid, stage, earlier)
            earlier = pd.concat([earlier, _grid("lelp selection", plan, variants, [SELECTION_SEED], progress).assign(stage=stage)])
        frames.append(earlier.assign(key=plan.key))
    return pd.concat(frames, ignore_index=True)


def chosen_by_task(chosen: LelpSettings, selection: pd.DataFrame) -> dict[str, list[dict]]:
    """Every task's variants for the pilot and the main run: its own validation choices, or another task's."""
    own = {plan.key: chosen_variants(selection[selection.key == plan.key], plan.methods, build_task(plan.spec).num_fine)
           for plan in chosen.tasks if plan.settings_from is None}
    return {plan.key: own[plan.key] if plan.settings_from is None else transferred_variants(own[plan.settings_from], plan.methods)
            for plan in chosen.tasks}


def run_replicates(chosen: LelpSettings, variants: Mapping[str, list[dict]], seeds: Sequence[int], experiment: str,
                   methods: Sequence[str] | None = None, transferred: bool = True, main: bool = True, progress: bool = True) -> pd.DataFrame:
    """Every task's chosen variants (only ``methods`` if given) on ``seeds``; ``transferred=False`` leaves out the tasks
    that take another task's settings; ``main=False`` (the pilot) keeps every replicate on the shared teacher."""
    frames = []
    for plan in chosen.tasks:
        if plan.settings_from is not None and not transferred:
            continue
        todo = [v for v in variants[plan.key] if methods is None or v["method"] in methods]
        frames.append(_grid(experiment, plan, todo, seeds, progress, main))
    return pd.concat(frames, ignore_index=True)


def teacher_accuracy(spec: Mapping[str, Any]) -> float:
    """Test accuracy of the teacher a spec names (vision teachers load without building the whole task)."""
    if spec["kind"] == "vision":
        return vision_teacher(spec["dataset"], spec["teachers"], spec["labels"], seed=spec.get("teacher_seed", 0)).test_accuracy
    return build_task(spec).teacher_test_accuracy


def teacher_table(chosen: LelpSettings, seeds: Sequence[int]) -> pd.DataFrame:
    """Test accuracy (%) of the teacher behind every task's main replicates: one column per replicate where the plan
    retrains its teachers, the shared teacher's otherwise, with their mean."""
    rows = []
    for plan in chosen.tasks:
        accuracy = {f"replicate {s}": 100 * teacher_accuracy(plan.replicate_spec(s, main=True)) for s in seeds}
        rows.append({"task": build_task(plan.spec).name, "teachers": "one per replicate" if plan.retrain_teacher else "shared",
                     **accuracy, "mean": sum(accuracy.values()) / len(accuracy)})
    return pd.DataFrame(rows).set_index("task")


# --- reporting ------------------------------------------------------------------------------------------------
SELECTED = "validation-selected"


def to_records(runs: pd.DataFrame) -> list[Record]:
    """Test and validation accuracy of every (task, method, replicate); replicates pair across methods within a task."""
    return [Record(row.task, row.method, SELECTED, int(row.seed), metric, float(getattr(row, metric)))
            for row in runs.itertuples() for metric in ("test_accuracy", "val_accuracy")]


def chosen_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and method: the chosen setting and the normalised entropy of its split (1 = uniform)."""
    first = runs.drop_duplicates(["task", "method"])
    table = first.assign(entropy=first.split_entropy.map(lambda e: "" if pd.isna(e) else f"{e:.3f}"))
    table = table.assign(chosen=[s if not e else f"{s} (H={e})" for s, e in zip(table.setting, table.entropy)])
    return table.pivot(index="task", columns="method", values="chosen").reindex(columns=[m for m in METHODS if m in set(table.method)]).fillna("")


def selection_table(selection: pd.DataFrame, method: str = "LELP") -> pd.DataFrame:
    """LELP's validation accuracy (%) over its S x beta grid on the selection replicate, with each setting's split
    entropy: a choice at the grid's edge or on a flat top says little."""
    rows = selection[(selection.method == method) & (selection.stage == "sweep")]
    return rows.assign(val=100 * rows.val_accuracy).pivot_table(index=["task", "subclasses"], columns="beta", values=["val", "split_entropy"])


def headroom_table(records: pd.DataFrame, teacher_accuracy: Mapping[str, float]) -> pd.DataFrame:
    """Per task, the room a better target has before any method is compared: teacher − KD on test, and each oracle's
    paired gain over KD on validation (the headroom gate's measurement), in pp with 95 % intervals."""
    test = records[(records.metric == "test_accuracy") & (records.method == "vanilla KD")].groupby("experiment").value.mean()
    rows = []
    for task, kd in test.items():
        row = {"task": task, "teacher (test %)": 100 * teacher_accuracy[task], "vanilla KD (test %)": 100 * kd,
               "teacher − KD (pp)": 100 * (teacher_accuracy[task] - kd)}
        for oracle in (ORACLE_UNIFORM, ORACLE_CENTROID):
            have = set(records[records.experiment == task].method)
            if oracle in have:
                estimate = paired_estimates(records, oracle, "vanilla KD", [task], metric="val_accuracy")[task]
                low, high = estimate.interval(0.95)
                row[f"{oracle} − KD (val pp)"] = f"{estimate.mean:+.2f} [{low:+.2f}, {high:+.2f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("task").fillna("-")


def plain_rows(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows for a results file (missing values as None)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def steps_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Where the students' best validation step fell (a best step at the end says the budget was short)."""
    share = runs.assign(at_end=runs.best_step >= 0.9 * runs.steps)
    return share.groupby("task").agg(students=("method", "size"), steps=("steps", "max"), median_best_step=("best_step", "median"),
                                     best_in_last_10pct=("at_end", "mean"))
