import numpy as np
import pytest

from kdlib.claims import rad
from kdlib.experiments.active import ORACLE, STRATEGIES
from kdlib.results import Record, grade, to_frame

MAIN, CIFAR, CLEAN = "fashion_mnist |L|=100", "cifar10 |L|=500", "fashion_mnist |L|=100 (teacher x)"
ROLES = {MAIN: "main", CIFAR: "gated", CLEAN: "clean control"}


def _records(oracle_val_gain_cifar: float):
    """RAD is +1 pp above every baseline on the main task (exactly, every seed); the oracle is +3 pp on validation there
    and ``oracle_val_gain_cifar`` pp on CIFAR-10; seeds add a common offset, which pairing removes."""
    rng = np.random.default_rng(0)
    out = []
    strategies = {MAIN: STRATEGIES, CIFAR: ("uniform", "margin", "entropy", "RAD", ORACLE), CLEAN: ("margin", "RAD")}
    for task, names in strategies.items():
        for seed in range(9 if task == MAIN else 3):
            offset = rng.normal(0, 0.02)
            for name in names:
                gain = {"RAD": 0.01, ORACLE: 0.03 if task == MAIN else oracle_val_gain_cifar / 100}.get(name, 0.0)
                jitter = rng.normal(0, 1e-4)
                values = {"mean_test_accuracy": 0.6 + offset + gain + jitter, "mean_val_accuracy": 0.6 + offset + gain + jitter,
                          "final_test_accuracy": 0.65 + offset + gain, "teacher_error_queried": 0.5 - gain}
                out += [Record(task, name, "-", seed, metric, value) for metric, value in values.items()]
            out += [Record(task, "teacher", "-", seed, "final_test_accuracy", 0.70 + offset)]
    return to_frame(out)


def test_evidence_pairs_the_right_tasks_and_the_gate_drops_cifar_without_headroom():
    records = _records(oracle_val_gain_cifar=0.1)
    evidence, gates = rad.evidence(records, ROLES)
    assert set(evidence["rad-beats-baselines"]["vs margin"]) == {MAIN, CIFAR}
    assert set(evidence["rad-beats-coreset"]) == {MAIN}  # CIFAR-10 runs no coreset
    assert evidence["rad-beats-coreset"][MAIN].mean == pytest.approx(1.0, abs=0.01)
    assert evidence["student-beats-teacher"][MAIN].mean == pytest.approx(-4.0, abs=1e-6)
    assert evidence["rad-gain-shrinks-with-clean-teacher"]["noisy − clean teacher"].mean == pytest.approx(0.0, abs=0.01)
    assert gates["rad-beats-baselines"]["vs margin"][MAIN].mean == pytest.approx(3.0, abs=0.01)
    verdicts = {v.declaration.id: v for v in grade(rad.DECLARATIONS, evidence, gates)}
    assert f"{CIFAR} (vs margin)" in verdicts["rad-beats-baselines"].gated_out and verdicts["rad-beats-baselines"].verdict == "reproduced"
    assert verdicts["rad-fewer-teacher-mistakes"].verdict == "reproduced"  # 1 pp fewer mistakes, direction -1
    assert verdicts["student-beats-teacher"].verdict == "contradicted"


def test_cifar_enters_with_headroom():
    evidence, gates = rad.evidence(_records(oracle_val_gain_cifar=3.0), ROLES)
    verdicts = {v.declaration.id: v for v in grade(rad.DECLARATIONS, evidence, gates)}
    assert not verdicts["rad-beats-baselines"].gated_out


def test_declared_replicates_respect_the_floor_and_the_pilot_plan():
    assert rad.R >= rad.FLOOR and rad.PLAN.cap == rad.CAP
    assert all(c.replicates == rad.R for c in rad.DECLARATIONS.claims)
    records = _records(oracle_val_gain_cifar=0.1)
    plan = rad.pilot_plan(records, MAIN)
    assert plan.n_pilot == 9 and plan.sd_pilot < 0.05  # RAD - margin is exactly 1 pp, up to the 1e-4 jitter
