"""Notebook 04 (RAD): rounds of active distillation on the semi-supervised harness, one selection strategy per student.

Per (task, seed): every strategy starts from the student trained on L alone. Each round it picks ``budget`` new points
of the pool U with its own current student, the teacher's soft labels of every point queried so far join L, and its
student is retrained from scratch (all strategies of a round train as one stacked model: same initial weights, same
batch order). Strategies only read the student, the validation set V and the round budget; the oracles also read
whether the teacher is right on U, and one *privileged* variant reads the teacher's confidence on the whole pool
(which a real active learner would have to pay queries for); both are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.experiments import unlabelled
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.distill.active import depround, entropy_gain, margin_gain, rad_marginals
from kdlib.distill.correctness import CorrectnessCalibration, MonotoneCorrectness, top1_margin
from kdlib.distill.slam import oracle_alpha
from kdlib.semisup import SemiSupervisedStudent, SemiSupervisedTask, noisy_teacher_recipe, vision_semisup_task
from kdlib.stacked import StackedMLP, fit_stacked, stacked_accuracy, stacked_class_scores
from kdlib.teachers import vision_teacher
from kdlib.train import TrainConfig

ACTIVE_VERSION = 1


@dataclass(frozen=True)
class RoundState:
    """What a strategy sees when it picks a round's queries among the ``n`` points not queried yet."""

    student_probs: torch.Tensor  # (n, C): the strategy's current student on the candidates
    budget: int
    teacher_error: float  # estimated on V: 1 - the teacher's validation accuracy
    teacher_right: torch.Tensor  # (n,) bool; oracles only
    right_given_student_margin: Callable[[torch.Tensor], torch.Tensor]  # P(teacher right | student margin), fitted on V
    right_given_teacher_margin: torch.Tensor  # (n,) P(teacher right | its own margin), fitted on V; privileged

    @property
    def mistakes(self) -> int:
        """m: the expected number of teacher mistakes among ``budget`` queried points."""
        return int(round(self.budget * self.teacher_error))


Strategy = Callable[[RoundState, np.random.Generator], np.ndarray]


def _top(scores: torch.Tensor, budget: int) -> np.ndarray:
    return scores.argsort(descending=True, stable=True)[:budget].numpy()


def _rad(gains: torch.Tensor, mistakes: int, state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return depround(rad_marginals(gains.numpy(), mistakes, state.budget), rng)


def uniform(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(state.student_probs), state.budget, replace=False)


def margin(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return _top(margin_gain(state.student_probs), state.budget)


def entropy(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return _top(entropy_gain(state.student_probs), state.budget)


def rad(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The gain-only game: margin gains, m from the teacher's validation accuracy."""
    return _rad(margin_gain(state.student_probs), state.mistakes, state, rng)


def rad_true_m(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The game with m = the true number of teacher mistakes among margin sampling's picks (oracle)."""
    gains = margin_gain(state.student_probs)
    mistakes = int((~state.teacher_right[_top(gains, state.budget)]).sum())
    return _rad(gains, mistakes, state, rng)


def rad_student_correctness(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The game on expected gains: a point is worth its margin gain times P(teacher right | the student's margin),
    an isotonic fit on V that needs no teacher query on the pool; m as in RAD."""
    right = state.right_given_student_margin(top1_margin(state.student_probs))
    return _rad(margin_gain(state.student_probs) * right, state.mistakes, state, rng)


def rad_teacher_correctness(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """As :func:`rad_student_correctness` with P(teacher right | the teacher's own margin), notebook 02's calibrated
    alpha: it reads the teacher's output on every pool point (privileged: that costs queries in practice)."""
    return _rad(margin_gain(state.student_probs) * state.right_given_teacher_margin, state.mistakes, state, rng)


def oracle_margin(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """Margin sampling that skips the points the teacher gets wrong (reads the truth: an upper bound)."""
    gains = margin_gain(state.student_probs).masked_fill(~state.teacher_right, -1.0)
    return _top(gains, state.budget)


STRATEGIES: dict[str, Strategy] = {
    "uniform": uniform,
    "margin": margin,
    "entropy": entropy,
    "RAD": rad,
    "RAD, true m": rad_true_m,
    "RAD + student-side correctness": rad_student_correctness,
    "RAD + teacher confidence (privileged)": rad_teacher_correctness,
    "oracle (skip teacher mistakes)": oracle_margin,
}


@dataclass(frozen=True)
class ActiveProtocol:
    """Rounds of queries: ``rounds`` rounds of ``budget`` points each, the student retrained every round."""

    rounds: int
    budget: int
    student: SemiSupervisedStudent

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.budget < 1:
            raise ValueError(f"need at least one round and a positive budget, got rounds={self.rounds}, budget={self.budget}")


def train_round(task: SemiSupervisedTask, queried: list[np.ndarray], student: SemiSupervisedStudent, seed: int) -> dict:
    """Train one student per queried set (indices into U) on L's labels plus the teacher's soft labels of its queries.

    Returns per student: validation and test accuracy, and its probabilities on U and on V.
    """
    n_l, c = len(task.y_labelled), task.num_classes
    union = np.unique(np.concatenate([q for q in queried] + [np.zeros(0, dtype=int)])).astype(int)
    x = torch.cat([task.x_labelled, task.x_unlabelled[union]])
    targets = torch.cat([nn.functional.one_hot(task.y_labelled, c).float(), task.teacher_unlabelled[union]])
    position = {int(u): n_l + k for k, u in enumerate(union)}
    weights = torch.zeros(len(queried), len(x))
    weights[:, :n_l] = 1.0
    for m, q in enumerate(queried):
        weights[m, [position[int(u)] for u in q]] = 1.0

    def loss(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        per_example = -(targets[idx] * torch.log_softmax(logits[..., 0], -1)).sum(-1)  # (M, B)
        w = weights[:, idx]
        return (w * per_example).sum(-1) / w.sum(-1).clamp_min(1.0)  # the mean over each student's own examples

    model = StackedMLP(x.shape[1], student.hidden, c, [1] * len(queried), seed)
    history = fit_stacked(model, loss, x, val=(task.x_val, task.y_val), config=student.train, seed=seed, progress=False)
    probs = {name: torch.softmax(stacked_class_scores(model, x_all), -1) for name, x_all in (("U", task.x_unlabelled), ("V", task.x_val))}
    return {"val_accuracy": history.best_val_accuracy, "test_accuracy": stacked_accuracy(model, task.x_test, task.y_test), "probs_U": probs["U"], "probs_V": probs["V"]}


def run_active(task: SemiSupervisedTask, strategies: list[str], protocol: ActiveProtocol, cache: Cache | None = None) -> dict[str, pd.DataFrame]:
    """Every strategy's rounds on ``task`` (cached).

    Returns ``"rounds"``: one row per (strategy, round) with the number of teacher queries, validation and test
    accuracy, and the teacher's error rate among that round's and among all queried points; and ``"alignment"``:
    the teacher's error rate on U per decile of the first student's uncertainty (:func:`error_by_uncertainty`).
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {unknown} (known: {sorted(STRATEGIES)})" if unknown else "no strategies to run")
    if protocol.rounds * protocol.budget > len(task.y_unlabelled):
        raise ValueError(f"{protocol.rounds} rounds of {protocol.budget} queries exceed the pool ({len(task.y_unlabelled)} points)")
    key = {"task": task.fingerprint(), "strategies": strategies, "protocol": protocol, "version": ACTIVE_VERSION}
    return (cache or Cache()).get_or_compute("active_runs", key, lambda: _run(task, strategies, protocol))


def _run(task: SemiSupervisedTask, strategies: list[str], protocol: ActiveProtocol) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(task.seed)
    teacher_right = unlabelled.oracle_correct(task).bool()
    teacher_right_val = oracle_alpha(task.teacher_val, task.y_val).bool()
    teacher_error = 1.0 - task.teacher_accuracy("val")
    right_given_teacher_margin = CorrectnessCalibration(task.teacher_val, task.y_val)(task.teacher_unlabelled)
    start = train_round(task, [np.zeros(0, dtype=int)], protocol.student, task.seed)
    probs_u = [start["probs_U"][0]] * len(strategies)
    probs_v = [start["probs_V"][0]] * len(strategies)
    queried = [np.zeros(0, dtype=int) for _ in strategies]
    out = [{"strategy": s, "round": 0, "queries": 0, "val_accuracy": float(start["val_accuracy"][0]), "test_accuracy": float(start["test_accuracy"][0]),
            "teacher_error_round": float("nan"), "teacher_error_queried": float("nan")} for s in strategies]
    for round_ in tqdm(range(1, protocol.rounds + 1), desc=f"rounds {task.name} s{task.seed}", leave=False):
        picked = []
        for m, name in enumerate(strategies):
            candidates = np.setdiff1d(np.arange(len(task.y_unlabelled)), queried[m])
            calibration = MonotoneCorrectness(top1_margin(probs_v[m]), teacher_right_val)
            state = RoundState(probs_u[m][candidates], protocol.budget, teacher_error, teacher_right[candidates], calibration,
                               right_given_teacher_margin[candidates])
            chosen = candidates[STRATEGIES[name](state, rng)]
            if len(chosen) != protocol.budget or len(np.intersect1d(chosen, queried[m])):
                raise RuntimeError(f"strategy {name!r} returned {len(chosen)} points (budget {protocol.budget}) or repeated a query")
            picked.append(chosen)
            queried[m] = np.concatenate([queried[m], chosen])
        trained = train_round(task, queried, protocol.student, task.seed)
        probs_u, probs_v = list(trained["probs_U"]), list(trained["probs_V"])
        for m, name in enumerate(strategies):
            out.append({
                "strategy": name, "round": round_, "queries": len(queried[m]),
                "val_accuracy": float(trained["val_accuracy"][m]), "test_accuracy": float(trained["test_accuracy"][m]),
                "teacher_error_round": 1.0 - teacher_right[picked[m]].float().mean().item(),
                "teacher_error_queried": 1.0 - teacher_right[queried[m]].float().mean().item(),
            })
    rounds = pd.DataFrame(out).assign(dataset=task.dataset, task=task.name, n_labelled=task.n_labelled, seed=task.seed)
    return {"rounds": rounds, "alignment": error_by_uncertainty(task, start["probs_U"][0])}


def error_by_uncertainty(task: SemiSupervisedTask, student_probs: torch.Tensor, bins: int = 10) -> pd.DataFrame:
    """The teacher's error rate on U per decile of the student's margin gain (decile 10 = the most uncertain points)."""
    gain = margin_gain(student_probs).numpy()
    wrong = 1.0 - unlabelled.oracle_correct(task).numpy()
    decile = pd.qcut(pd.Series(gain).rank(method="first"), bins, labels=list(range(1, bins + 1)))
    frame = pd.DataFrame({"decile": decile.astype(int), "teacher wrong": wrong})
    return frame.groupby("decile").mean().reset_index().assign(task=task.name, seed=task.seed)


# --- the notebook's settings --------------------------------------------------------------------------------------
# (dataset, |L|, teacher): "noisy" is the harness's teacher trained on L alone (notebooks 02-03), "clean" the shared
# teacher trained on the whole training set
SETTINGS = {
    "quick": [("fashion_mnist", 100, "noisy"), ("fashion_mnist", 100, "clean")],
    "full": [("fashion_mnist", 100, "noisy"), ("cifar10", 4000, "noisy"), ("fashion_mnist", 100, "clean")],
}
PROTOCOL = {
    "quick": dict(rounds=3, budget=50, train=TrainConfig(epochs=6, batch_size=128, lr=3e-3, patience=3, cosine=True)),
    "full": dict(rounds=10, budget=300, train=TrainConfig(epochs=20, batch_size=128, lr=3e-3, patience=5, cosine=True)),
}


def protocol(profile: str) -> ActiveProtocol:
    """Rounds, budget per round and the student (the 64-unit MLP of notebooks 02-03) of ``profile``."""
    chosen = pick(profile, PROTOCOL)
    return ActiveProtocol(chosen["rounds"], chosen["budget"], SemiSupervisedStudent(hidden=64, train=chosen["train"]))


def make_task(dataset: str, n_labelled: int, teacher: str, seed: int, profile: str) -> SemiSupervisedTask:
    """The harness's (dataset, |L|, seed) task of ``profile`` with its noisy teacher, or with the clean shared teacher."""
    if teacher == "noisy":
        return unlabelled.make_task(dataset, n_labelled, seed, profile)
    if teacher != "clean":
        raise ValueError(f"teacher must be 'noisy' or 'clean', got {teacher!r}")
    return vision_semisup_task(
        dataset, n_labelled, n_unlabelled=pick(profile, unlabelled.POOL)[dataset], seed=seed, n_validation=pick(profile, unlabelled.VALIDATION),
        recipe=noisy_teacher_recipe(dataset, profile), teacher=vision_teacher(dataset, profile),
    )


def to_records(rounds: pd.DataFrame) -> list[Record]:
    """Per (task, strategy, seed): the mean test accuracy over rounds 1..R (the area under the accuracy-vs-queries
    curve, per round), the final test accuracy, and the teacher's error rate among all the points queried."""
    queried = rounds[rounds["round"] > 0]
    out = []
    for (task, strategy, seed), group in queried.groupby(["task", "strategy", "seed"], sort=False):
        last = group[group["round"] == group["round"].max()].iloc[0]
        values = {"mean_test_accuracy": group.test_accuracy.mean(), "final_test_accuracy": last.test_accuracy, "teacher_error_queried": last.teacher_error_queried}
        out += [Record(task, strategy, "-", int(seed), metric, float(value)) for metric, value in values.items()]
    return out
