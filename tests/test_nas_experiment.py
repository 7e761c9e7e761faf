"""Notebook 06's experiment driver on small synthetic spaces (the notebook runs it on the real ones)."""

import numpy as np
import pytest

from kdlib.experiments import layernas as exp
from kdlib.nas import additive_space


@pytest.fixture(scope="module")
def space():
    return additive_space(5, 3, seed=0)


def test_constrained_runs_share_the_budget(space):
    runs, traces, oracles = exp.run_constrained(space, (0.3, 0.7), seeds=[0, 1], progress=False)
    assert len(runs) == 2 * 2 * 3 and set(runs.strategy) == set(exp.STRATEGIES)
    per_run = runs.groupby(["quantile", "seed"]).evaluations.nunique()
    assert (per_run == 1).all()  # the baselines get exactly LayerNAS's N
    assert runs.feasible.all() and (runs.regret >= -1e-12).all()
    assert len(oracles) == 2 and (oracles.report >= runs.groupby("quantile").test_accuracy.max().to_numpy() - 1e-12).all()
    assert traces.groupby(["quantile", "strategy", "seed"]).evaluation.max().min() >= 1


def test_front_and_records_and_claims(space):
    runs, _, _ = exp.run_constrained(space, (0.5,), seeds=[0, 1, 2], progress=False)
    points, scores = exp.run_front(space, seeds=[0, 1, 2])
    assert set(points.strategy) == set(exp.STRATEGIES) | {"oracle"}
    assert len(points[points.strategy == "oracle"]) == len(exp.FRONT_LEVELS)
    assert (scores.front_area >= 0).all() and set(scores.columns) >= {"front_area", "front_quantile_score"}
    oracle = points[points.strategy == "oracle"].set_index("level").test_accuracy
    for _, group in points[points.strategy != "oracle"].groupby(["strategy", "seed"]):
        found = group.set_index("level").test_accuracy
        assert (found.dropna() <= oracle[found.dropna().index] + 1e-12).all()  # report = reward here: the oracle is best
    counts = exp.evaluation_counts([2, 3, 4], 3, seeds=[0])
    assert (counts.evaluations <= counts.bound).all() and (counts.bound <= counts["kH|S|L"]).all()
    real = exp.count_table(runs, {space.name: space})
    records = exp.to_records(runs, scores)
    assert exp.experiments(records, "front") == [f"{space.name} front"]
    claims = exp.build_claims(records, runs, counts, real)
    assert [c.id for c in claims] == ["better-under-constraint", "polynomial-evaluations", "better-front"]
    assert claims[1].holds


def test_ablation_shape(space):
    table = exp.ablation(space, (0.5,), seeds=[0], ks=(1, 2), bases=("largest",))
    assert len(table) == 2 * 3 and set(table.k) == {1, 2}
