"""Notebook 04 (RAD): rounds of active distillation on the semi-supervised harness, one selection strategy per student.

Per (task, seed): the pool is the first ``protocol.pool`` points of the harness's U. Every strategy starts from the
student trained on L alone. Each round it picks ``budget`` new pool points with its own current student, the
teacher's soft labels of every point it queried so far join L, and its student is retrained from scratch (the same
initial weights for every strategy; early-stopped on V, with a schedule that scales with the training-set size).
Strategies are trained one by one, not as one stack: a stack would train every student on the union of all the
strategies' queries, several times each one's own set. Strategies only read the student, the validation set V and
the round budget; the oracles also read whether the teacher is right on the pool, and one *privileged* variant
reads the teacher's confidence on the whole pool (which a real active learner would pay queries for).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.distill.active import RoundState, available_selection_rules, get_selection_rule, margin_gain
from kdlib.distill.correctness import CorrectnessCalibration, MonotoneCorrectness, top1_margin
from kdlib.distill.slam import oracle_alpha
from kdlib.experiments import unlabelled
from kdlib.grid import run_grid
from kdlib.experiments.unlabelled import SemiSupervisedStudent
from kdlib.models.stacked import StudentStack, rows
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.tasks import SemiSupervisedTask, vision_semisup_task
from kdlib.teachers import FewLabelRecipe, few_label_recipe, vision_teacher
from kdlib.train import predict_outputs

ACTIVE_VERSION = 3
ORACLE = "oracle (skip teacher mistakes)"
STRATEGIES = ("uniform", "margin", "entropy", "coreset (k-center greedy)", "RAD", "RAD, true m", "RAD + student-side correctness",
              "RAD + teacher confidence (privileged)", ORACLE)  # the selection rules of notebook 04, in presentation order


@dataclass(frozen=True)
class ActiveProtocol:
    """``rounds`` rounds of ``budget`` queries from a pool of the first ``pool`` points of U; every round's student is
    trained by ``schedule.config(n)`` for its n training examples (epochs with a floor of updates, early stopping)."""

    rounds: int
    budget: int
    pool: int
    schedule: FewLabelRecipe

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.budget < 1:
            raise ValueError(f"need at least one round and a positive budget, got rounds={self.rounds}, budget={self.budget}")
        if self.rounds * self.budget > self.pool:
            raise ValueError(f"{self.rounds} rounds of {self.budget} queries exceed the pool ({self.pool} points)")


def restrict(task: SemiSupervisedTask, indices: np.ndarray) -> SemiSupervisedTask:
    """``task`` with U (inputs, labels, teacher) cut down to the points ``indices``, in that order."""
    index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return replace(task, x_unlabelled=rows(task.x_unlabelled, index), y_unlabelled=task.y_unlabelled[index],
                   teacher_unlabelled=task.teacher_unlabelled[index], _fingerprint=None)


class _Features(nn.Module):
    """A student's penultimate features as its output, in the student's layout (for :func:`~kdlib.train.predict_outputs`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.memory_format = getattr(net, "memory_format", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


def features_and_probs(model: StudentStack, x, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """The first student's penultimate features (its ``embed``) and class probabilities on ``x``."""
    net = model.student(0).eval()
    features = predict_outputs(_Features(net), x, batch_size)
    with torch.no_grad():
        return features, torch.softmax(net.head(features), -1)


def train_round(pool: SemiSupervisedTask, queried: np.ndarray, student: SemiSupervisedStudent, schedule: FewLabelRecipe) -> dict:
    """One student trained from scratch on L's labels and the teacher's soft labels of the pool points ``queried``.

    Returns its best validation accuracy, test accuracy, and its features and probabilities on L and on the pool.
    """
    train = restrict(pool, queried).training_set()
    fitted = replace(student, train=schedule.config(len(train.labels)))
    model, history = unlabelled.fit_students(pool, fitted, [get_objective("soft_distillation")], train, pool.seed)
    features_l, _ = features_and_probs(model, pool.x_labelled)
    features_u, probs_u = features_and_probs(model, pool.x_unlabelled)
    test = (features_and_probs(model, pool.x_test)[1].argmax(1) == pool.y_test).double().mean().item()
    return {"val_accuracy": float(history.best_val_accuracy[0]), "test_accuracy": test,
            "features_L": features_l, "features_U": features_u, "probs_U": probs_u, "probs_V": features_and_probs(model, pool.x_val)[1]}


def run_active(task: SemiSupervisedTask, strategies: list[str], protocol: ActiveProtocol, student: SemiSupervisedStudent,
               cache: Cache | None = None) -> dict[str, pd.DataFrame]:
    """Every strategy's rounds on ``task`` (cached).

    Returns ``"rounds"``: one row per (strategy, round) with the number of teacher queries, validation and test
    accuracy, and the teacher's error rate among that round's and among all queried points; and ``"alignment"``:
    the teacher's error rate on the pool per decile of the first student's uncertainty (:func:`error_by_uncertainty`).
    """
    unknown = [s for s in strategies if s not in available_selection_rules()]
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {unknown} (known: {available_selection_rules()})" if unknown else "no strategies to run")
    if protocol.pool > len(task.y_unlabelled):
        raise ValueError(f"the pool ({protocol.pool} points) exceeds U ({len(task.y_unlabelled)} points)")
    sizes = [task.n_labelled + r * protocol.budget for r in range(protocol.rounds + 1)]
    key = {"task": task.fingerprint(), "strategies": strategies, "protocol": protocol, "student": student,
           "schedules": [protocol.schedule.config(n) for n in sizes], "version": ACTIVE_VERSION}
    return (cache or Cache()).get_or_compute("active_runs", key, lambda: _run(restrict(task, np.arange(protocol.pool)), strategies, protocol, student))


def _run(pool: SemiSupervisedTask, strategies: list[str], protocol: ActiveProtocol, student: SemiSupervisedStudent) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(pool.seed)
    teacher_right = unlabelled.oracle_correct(pool).bool()
    teacher_right_val = oracle_alpha(pool.teacher_val, pool.y_val).bool()
    teacher_error = 1.0 - pool.teacher_accuracy("val")
    right_given_teacher_margin = CorrectnessCalibration(pool.teacher_val, pool.y_val)(pool.teacher_unlabelled)
    nothing = np.zeros(0, dtype=int)
    start = train_round(pool, nothing, student, protocol.schedule)
    current = [start] * len(strategies)
    queried = [nothing] * len(strategies)
    out = [{"strategy": s, "round": 0, "queries": 0, "val_accuracy": start["val_accuracy"], "test_accuracy": start["test_accuracy"],
            "teacher_error_round": float("nan"), "teacher_error_queried": float("nan")} for s in strategies]
    for round_ in tqdm(range(1, protocol.rounds + 1), desc=f"rounds {pool.name} s{pool.seed}", leave=False):
        for m, name in enumerate(strategies):
            state, candidates = _state(current[m], queried[m], protocol.budget, teacher_error, teacher_right, teacher_right_val,
                                       right_given_teacher_margin)
            chosen = candidates[get_selection_rule(name)(state, rng)]
            if len(chosen) != protocol.budget or len(np.intersect1d(chosen, queried[m])):
                raise RuntimeError(f"strategy {name!r} returned {len(chosen)} points (budget {protocol.budget}) or repeated a query")
            queried[m] = np.concatenate([queried[m], chosen])
            current[m] = train_round(pool, queried[m], student, protocol.schedule)
            out.append({"strategy": name, "round": round_, "queries": len(queried[m]),
                        "val_accuracy": current[m]["val_accuracy"], "test_accuracy": current[m]["test_accuracy"],
                        "teacher_error_round": 1.0 - teacher_right[chosen].float().mean().item(),
                        "teacher_error_queried": 1.0 - teacher_right[queried[m]].float().mean().item()})
    rounds = pd.DataFrame(out).assign(dataset=pool.dataset, task=pool.name, n_labelled=pool.n_labelled, seed=pool.seed)
    return {"rounds": rounds, "alignment": error_by_uncertainty(pool, start["probs_U"])}


def _state(current: dict, queried: np.ndarray, budget: int, teacher_error: float, teacher_right: torch.Tensor, teacher_right_val: torch.Tensor,
           right_given_teacher_margin: torch.Tensor) -> tuple[RoundState, np.ndarray]:
    """What a strategy sees this round (from its current student), and the candidates' indices into the pool."""
    candidates = np.setdiff1d(np.arange(len(teacher_right)), queried)
    calibration = MonotoneCorrectness(top1_margin(current["probs_V"]), teacher_right_val)
    covered = torch.cat([current["features_L"], current["features_U"][queried]])
    state = RoundState(current["probs_U"][candidates], budget, teacher_error, teacher_right[candidates], calibration,
                       right_given_teacher_margin[candidates], current["features_U"][candidates], covered)
    return state, candidates


def error_by_uncertainty(task: SemiSupervisedTask, student_probs: torch.Tensor, bins: int = 10) -> pd.DataFrame:
    """The teacher's error rate on U per decile of the student's margin gain (decile 10 = the most uncertain points)."""
    gain = margin_gain(student_probs).numpy()
    wrong = 1.0 - unlabelled.oracle_correct(task).numpy()
    decile = pd.qcut(pd.Series(gain).rank(method="first"), bins, labels=list(range(1, bins + 1)))
    frame = pd.DataFrame({"decile": decile.astype(int), "teacher wrong": wrong})
    return frame.groupby("decile").mean().reset_index().assign(task=task.name, seed=task.seed)


# --- the notebook's settings --------------------------------------------------------------------------------------
PILOT_SEEDS = (1001, 1002, 1003)  # the pilot's replicates on the main setting (the power rule's spread; never reused)
PILOT_STRATEGIES = ("uniform", "margin", "RAD")
GATE_STRATEGIES = ("uniform", "margin", "entropy", "RAD", ORACLE)  # CIFAR-10: the first claim's strategies and the ceiling
CONTROL_STRATEGIES = ("margin", "RAD")  # the clean teacher: the control needs only these two


@dataclass(frozen=True)
class ActiveSetting:
    """One task of the notebook: (dataset, |L|, teacher "noisy" or "clean"), its strategies and seeds 0..replicates-1."""

    dataset: str
    n_labelled: int
    teacher: str
    strategies: tuple[str, ...]
    replicates: int
    role: str


# rounds x budget from a pool of the first `pool` points of U; the student's schedule per round (epochs with a floor of
# updates, early stopping on V): a student on 100-400 examples needs a few hundred updates to converge (measured:
# validation 0.43 after 250 updates at lr 2e-3, 0.61 after 280 at lr 5e-3, batch 64)
PROTOCOL = {
    "quick": dict(rounds=2, budget=50, pool=300, schedule=FewLabelRecipe(epochs=4, min_steps=20, patience=2, batch_size=64, lr=5e-3, augment=False)),
    "full": dict(rounds=3, budget=100, pool=2000, schedule=FewLabelRecipe(epochs=30, min_steps=300, patience=8, batch_size=64, lr=5e-3, augment=False)),
}
CIFAR_SEEDS, CLEAN_SEEDS = 3, 5  # the budget's cut (main setting: the power rule's replicates)


def protocol(profile: str) -> ActiveProtocol:
    """Rounds, budget per round, pool and the student's schedule of ``profile``."""
    return ActiveProtocol(**pick(profile, PROTOCOL))


def settings(profile: str, replicates: int) -> list[ActiveSetting]:
    """The notebook's tasks: noisy Fashion-MNIST |L| = 100 (main, ``replicates`` seeds, every strategy), noisy CIFAR-10
    |L| = 500 (entering the claims only through the headroom gate; fewer seeds and strategies) and the clean-teacher
    control on the main split (margin and RAD)."""
    main = ActiveSetting("fashion_mnist", 100, "noisy", STRATEGIES, pick(profile, {"quick": 2, "full": replicates}), "main")
    clean = ActiveSetting("fashion_mnist", 100, "clean", CONTROL_STRATEGIES, pick(profile, {"quick": 2, "full": CLEAN_SEEDS}), "clean control")
    if profile == "quick":
        return [main, clean]
    return [main, ActiveSetting("cifar10", 500, "noisy", GATE_STRATEGIES, CIFAR_SEEDS, "gated"), clean]


def pilot_setting(profile: str) -> ActiveSetting:
    """The pilot: the main setting's task on seeds never reused (:data:`PILOT_SEEDS`), three strategies."""
    return ActiveSetting("fashion_mnist", 100, "noisy", PILOT_STRATEGIES, pick(profile, {"quick": 2, "full": len(PILOT_SEEDS)}), "pilot")


def seeds_of(setting: ActiveSetting) -> list[int]:
    """The seeds of a setting: the pilot's own, else 0..replicates-1."""
    return list(PILOT_SEEDS[: setting.replicates]) if setting.role == "pilot" else list(range(setting.replicates))


def active_cell(dataset: str, n_labelled: int, teacher: str, seed: int, profile: str, strategies: list[str]) -> dict:
    """A grid cell: every strategy's rounds on one (dataset, |L|, teacher, seed) task (the run itself cached by content).

    Returns one row: the task's name, its summary (the teacher's accuracy on test, U and V, its confidence and training),
    and the ``rounds`` and ``alignment`` frames of :func:`run_active`.
    """
    task = make_task(dataset, n_labelled, teacher, seed, profile)
    run = run_active(task, list(strategies), protocol(profile), unlabelled.student(profile, dataset))
    return {"task": task.name, "summary": {**task.summary(), "teacher acc (V)": task.teacher_accuracy("val")}, **run}


def run_setting(setting: ActiveSetting, profile: str, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Every seed of ``setting`` through :func:`kdlib.grid.run_grid`: ``"teachers"`` (one row per seed: the task's summary,
    from which RAD's m is read), ``"rounds"`` and ``"alignment"``."""
    cells = [{"dataset": setting.dataset, "n_labelled": setting.n_labelled, "teacher": setting.teacher, "seed": seed, "profile": profile,
              "strategies": list(setting.strategies)} for seed in seeds_of(setting)]
    out = run_grid(active_cell, experiment=f"active {setting.role}", cells=cells, context={"version": ACTIVE_VERSION}, progress=progress)
    teachers = pd.DataFrame([{**row.summary, "seed": row.seed} for row in out.itertuples()])
    rounds = pd.concat([r.assign(teacher=setting.teacher, role=setting.role) for r in out["rounds"]], ignore_index=True)
    return {"teachers": teachers, "rounds": rounds, "alignment": pd.concat(list(out["alignment"]), ignore_index=True)}


def make_task(dataset: str, n_labelled: int, teacher: str, seed: int, profile: str) -> SemiSupervisedTask:
    """The harness's (dataset, |L|, seed) task of ``profile`` with its noisy teacher, or with the clean shared teacher."""
    if teacher == "noisy":
        return unlabelled.make_task(dataset, n_labelled, seed, profile)
    if teacher != "clean":
        raise ValueError(f"teacher must be 'noisy' or 'clean', got {teacher!r}")
    return vision_semisup_task(
        dataset, n_labelled, n_unlabelled=pick(profile, unlabelled.POOL)[dataset], seed=seed, n_validation=pick(profile, unlabelled.VALIDATION),
        recipe=few_label_recipe(dataset, profile), teacher=vision_teacher(dataset, profile),
    )


def to_records(rounds: pd.DataFrame, teachers: pd.DataFrame | None = None) -> list[Record]:
    """Per (task, strategy, seed): the test and validation accuracy averaged over rounds 1..R (the area under the
    accuracy-vs-queries curve, per round), the final test accuracy, and the teacher's error rate among all the points
    queried; per row of ``teachers`` (:func:`run_setting`'s), the teacher as a method (its test accuracy as the final and
    mean test accuracy)."""
    teachers = pd.DataFrame(columns=["task", "seed", "teacher acc (test)"]) if teachers is None else teachers
    out = [Record(row["task"], "teacher", "-", int(row["seed"]), metric, float(row["teacher acc (test)"]))
           for _, row in teachers.iterrows() for metric in ("final_test_accuracy", "mean_test_accuracy")]
    queried = rounds[rounds["round"] > 0]
    for (task, strategy, seed), group in queried.groupby(["task", "strategy", "seed"], sort=False):
        last = group[group["round"] == group["round"].max()].iloc[0]
        values = {"mean_test_accuracy": group.test_accuracy.mean(), "mean_val_accuracy": group.val_accuracy.mean(),
                  "final_test_accuracy": last.test_accuracy, "teacher_error_queried": last.teacher_error_queried}
        out += [Record(task, strategy, "-", int(seed), metric, float(value)) for metric, value in values.items()]
    return out
