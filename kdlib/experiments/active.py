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

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.distill.active import RoundState, available_selection_rules, get_selection_rule, margin_gain
from kdlib.distill.correctness import CorrectnessCalibration, MonotoneCorrectness, top1_margin
from kdlib.distill.slam import oracle_alpha
from kdlib.experiments import unlabelled
from kdlib.experiments.unlabelled import SemiSupervisedStudent
from kdlib.models.stacked import StackedMLP
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.tasks import SemiSupervisedTask, vision_semisup_task
from kdlib.teachers import few_label_recipe, vision_teacher
from kdlib.train import TrainConfig, TrainSet, accuracy, fit, predict_outputs, set_seed

ACTIVE_VERSION = 2
STRATEGIES = ("uniform", "margin", "entropy", "RAD", "RAD, true m", "RAD + student-side correctness", "RAD + teacher confidence (privileged)",
              "oracle (skip teacher mistakes)")  # the selection rules of notebook 04, in presentation order


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
    probs = torch.cat([torch.nn.functional.one_hot(task.y_labelled, c).float(), task.teacher_unlabelled[union]])
    labels = torch.cat([task.y_labelled, torch.full((len(union),), -1, dtype=task.y_labelled.dtype)])
    train = TrainSet(torch.cat([task.x_labelled, task.x_unlabelled[union]]), labels, teacher=torch.log(probs.clamp_min(1e-12)))
    position = {int(u): n_l + k for k, u in enumerate(union)}
    objectives = []
    for q in queried:  # each student: the soft labels of its own queries, averaged over its own examples
        own = torch.zeros(len(labels))
        own[[position[int(u)] for u in q]] = 1.0
        objectives.append(get_objective("weighted_distillation", weights=own, target="soft", normalise=True))
    set_seed(seed)
    model = StackedMLP(train.inputs.x.shape[1], student.hidden, c, [1] * len(queried), seed)
    history = fit(model, objectives, train, config=student.train, seed=seed, val=(task.x_val, task.y_val), progress=False)
    probs = {name: torch.softmax(predict_outputs(model, x_all), -1) for name, x_all in (("U", task.x_unlabelled), ("V", task.x_val))}
    return {"val_accuracy": history.best_val_accuracy, "test_accuracy": accuracy(model, task.x_test, task.y_test), "probs_U": probs["U"], "probs_V": probs["V"]}


def run_active(task: SemiSupervisedTask, strategies: list[str], protocol: ActiveProtocol, cache: Cache | None = None) -> dict[str, pd.DataFrame]:
    """Every strategy's rounds on ``task`` (cached).

    Returns ``"rounds"``: one row per (strategy, round) with the number of teacher queries, validation and test
    accuracy, and the teacher's error rate among that round's and among all queried points; and ``"alignment"``:
    the teacher's error rate on U per decile of the first student's uncertainty (:func:`error_by_uncertainty`).
    """
    unknown = [s for s in strategies if s not in available_selection_rules()]
    if unknown or not strategies:
        raise ValueError(f"unknown strategies {unknown} (known: {available_selection_rules()})" if unknown else "no strategies to run")
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
            chosen = candidates[get_selection_rule(name)(state, rng)]
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
        recipe=few_label_recipe(dataset, profile), teacher=vision_teacher(dataset, profile),
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
