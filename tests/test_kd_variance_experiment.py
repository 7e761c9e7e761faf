"""Notebook 07's protocol (kdlib.experiments.kd_variance) and claims (kdlib.claims.kd_variance) on toy settings."""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

from kdlib.claims import kd_variance as claims
from kdlib.experiments import kd_variance as kv
from kdlib.results import grade
from kdlib.train import Batch

SPEC = kv.ConvexSpec("digits", 200, 8, 1e-2, gd_steps=(10, 2))
RUN = kv.ConvexRun(batch_size=10, lr=1.0, epochs=6, evals_per_epoch=2, floor_from=3, lambdas=(0.5, 0.75, 1.0))
NET = kv.NetRun("mlp", "digits", 100, (16,), lr=0.05, weight_decay=1e-4, batch_size=10, epochs=2, teacher_epochs=3, probe_every=2, probe_examples=16)
DEEP = kv.NetRun("deep_linear", "digits", 100, (8,), lr=0.05, weight_decay=1e-4, batch_size=10, epochs=2, teacher_epochs=3, components=8,
                 probe_every=2, probe_examples=16)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path))
    kv.convex_problem.cache_clear()
    kv.net_teacher.cache_clear()
    yield
    kv.convex_problem.cache_clear()
    kv.net_teacher.cache_clear()


def test_whitening_gives_unit_covariance_on_the_training_set():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    z, other = kv.whiten(train, 4, train[:10])
    assert np.allclose(z.T @ z / len(z), np.eye(4), atol=1e-10) and np.allclose(z[:10], other)
    with pytest.raises(ValueError, match="cannot whiten 7 components"):
        kv.whiten(np.hstack([train, np.zeros((300, 2))]), 7)


def test_teachers_improve_with_steps_and_the_optimum_is_stationary():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(80, 4)))
    y = torch.from_numpy((x[:, 0] > 0).long().numpy() + (x[:, 1] > 0.5).long().numpy())
    optimum = kv.lbfgs_optimum(x, y, 0.05, 3)
    tensors = [p.clone().requires_grad_(True) for p in optimum]
    grads = torch.autograd.grad(kv.objective(tensors, x, y, 0.05), tensors)
    assert max(float(g.abs().max()) for g in grads) < 1e-8
    smooth = kv.smoothness(x, 0.05)
    values = [float(kv.objective(kv.gd_teacher(x, y, 0.05, 3, k, 1 / smooth), x, y, 0.05)) for k in (1, 5, 50)]
    assert values[0] > values[1] > values[2] > float(kv.objective(optimum, x, y, 0.05))
    with pytest.raises(ValueError, match=r"learning rate must be in \(0, 2/L\)"):
        kv.check_learning_rate(2.5 / smooth, smooth)


def test_kd_loss_students_read_their_own_teachers_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    batch = Batch(torch.arange(2), torch.tensor([0, 1]), None, {"A": logits, "B": -logits}, 0)
    student = kv._objective(kv.Student("A", kv.KD_LOSS, 1.0, kv.Rule(), loss="kd"))
    other = kv._objective(kv.Student("B", kv.KD_LOSS, 1.0, kv.Rule(), loss="kd"))
    assert torch.allclose(student(logits, batch), torch.zeros(2), atol=1e-7) and (other(logits, batch) > 1).all()


def test_convex_cell_runs_every_method_and_the_optimal_teacher_removes_the_noise(cache):
    rows = pd.DataFrame(kv.convex_cell(problem=asdict(SPEC), run=asdict(RUN), seed=0)).assign(seed=0)
    teachers = [kv.OPTIMUM, "GD-10", "GD-2", kv.OTHER_HALF]
    assert len(rows) == 2 + len(teachers) * (len(RUN.lambdas) + 3) and np.isfinite(rows.log10_floor).all()
    floor = rows.set_index(["teacher", "method"]).log10_floor
    sgd = floor[(kv.NO_TEACHER, kv.SGD)]
    assert floor[(kv.OPTIMUM, kv.kd_grad(1.0))] < sgd - 1  # x* is a fixed point without noise at lam = 1
    # grad F(x*) = 0: the full-gradient correction changes nothing for the optimal teacher
    assert floor[(kv.OPTIMUM, kv.KD_FULL)] == pytest.approx(floor[(kv.OPTIMUM, kv.kd_grad(1.0))], abs=1e-6)
    assert all(len(e) == len(s) for e, s in zip(rows.epochs, rows.suboptimality)) and rows.epochs.iloc[0][0] == 0.0
    best = kv.best_lambdas(rows)
    assert set(best.teacher) == set(teachers) and best.best_lambda.isin([0.0, *RUN.lambdas]).all()
    assert best.set_index("teacher").best_lambda[kv.OPTIMUM] == 1.0
    with pytest.raises(ValueError, match="learning rate"):
        kv.convex_cell(problem=asdict(SPEC), run=asdict(kv.ConvexRun(20, 50.0, 3, 2, 1)), seed=0)


def test_net_cell_measures_cosine_and_gradient_noise_per_epoch(cache):
    for net in (NET, DEEP):
        rows = pd.DataFrame(kv.net_cell(run=asdict(net), seed=0))
        assert rows.epoch.tolist() == [0, 1, 2]
        assert rows.cosine_mean.iloc[1:].between(-1, 1).all() and np.isnan(rows.cosine_mean.iloc[0])
        assert (rows[["noise_sgd", "noise_kd"]] > 0).all().all()
        assert rows.train_loss_sgd.iloc[0] == rows.train_loss_kd.iloc[0]  # one shared initialisation
    linear = pd.DataFrame(kv.net_cell(run={**asdict(DEEP), "hidden": ()}, seed=0))  # no hidden layer: the identity holds
    assert np.allclose(linear.cosine_min.iloc[1:], 1.0, atol=1e-9)


def test_claims_grade_on_toy_replicates(cache):
    e1 = pd.concat([pd.DataFrame(kv.convex_cell(problem=asdict(SPEC), run=asdict(RUN), seed=s)).assign(seed=s) for s in (0, 1)])
    problem = kv.convex_problem(SPEC)
    teachers = kv.teacher_table(problem, kv.noise_by_teacher(problem))
    nets = {task: pd.concat([pd.DataFrame(kv.net_cell(run=asdict(net), seed=s)).assign(seed=s) for s in (0, 1)])
            for task, net in zip(claims.NET_TASKS, (DEEP, NET))}
    gap = kv.identity_gap(problem, RUN.lambdas, 16, 2, seed=0)
    assert gap < 1e-12
    good, poor = kv.claim_teachers(SPEC)
    assert (good, poor) == ("GD-10", "GD-2")
    verdicts = grade(claims.DECLARATIONS, claims.evidence(e1, teachers, gap, nets, "toy", good, poor))
    assert [v.declaration.id for v in verdicts] == [c.id for c in claims.DECLARATIONS.claims]
    assert {v.declaration.id: v.verdict for v in verdicts}["kd-gradient-identity"] == "reproduced"
    plans = claims.pilot_plans(e1, teachers, nets, good, poor)
    assert set(plans) == set(claims.PLANS) and min(p.replicates for p in plans.values()) >= claims.MIN_REPLICATES
    table = kv.paper_vs_ours(e1, teachers, SPEC, RUN)
    assert list(table.index) == ["good", "trend", "poor", "lambda*", "sigma2"]


def test_declared_plans_follow_the_pilot_and_the_settings_resolve():
    assert claims.E1_REPLICATES >= 3 and claims.NET_REPLICATES >= 3
    assert all(c.plan is None or c.plan.replicates == c.replicates for c in claims.DECLARATIONS.claims)
    full = kv.settings("full", claims.E1_REPLICATES, claims.NET_REPLICATES)
    assert full.convex_replicates == claims.E1_REPLICATES and full.pilot_seeds == kv.PILOT_SEEDS
    assert not set(full.pilot_seeds) & set(range(full.convex_replicates))
    assert kv.settings("quick", 5, 5).convex_replicates == 2


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="l2 > 0"):
        kv.ConvexSpec("digits", 200, 8, 0.0, gd_steps=(3,))
    with pytest.raises(ValueError, match="learning rate must be > 0"):
        kv.ConvexRun(batch_size=10, lr=0.0, epochs=3, evals_per_epoch=1, floor_from=1)
    with pytest.raises(ValueError, match="floor_from < epochs"):
        kv.ConvexRun(batch_size=10, lr=0.1, epochs=3, evals_per_epoch=1, floor_from=3)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        kv.ConvexRun(batch_size=10, lr=0.1, epochs=3, evals_per_epoch=1, floor_from=1, lambdas=(0.5, 2.0))
    with pytest.raises(ValueError, match="kind must be"):
        kv.NetRun("cnn", "digits", 100, (8,), 0.1, 0.0, 10, 1, 1)
    with pytest.raises(ValueError, match="two disjoint subsets"):
        kv._subsets("digits", 1000, 0)
