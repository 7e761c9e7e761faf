import numpy as np
import pandas as pd
import pytest
import torch

from kdlib.cache import Cache
from kdlib.distill.active import RoundState, get_selection_rule
from kdlib.experiments import active
from kdlib.plots.active import paired_by_round
from kdlib.teachers import FewLabelRecipe
from tests.test_unlabelled import STUDENT, _task

SCHEDULE = FewLabelRecipe(epochs=3, min_steps=1, patience=3, batch_size=32, lr=1e-2, augment=False)


def _state(teacher_error=0.0, n=40, budget=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, 3, generator=g), 1)
    right = torch.rand(n, generator=g) < 0.7
    return RoundState(probs, budget, teacher_error, right, lambda margin: 0.5 + margin / 2, torch.rand(n, generator=g),
                      torch.randn(n, 4, generator=g), torch.randn(6, 4, generator=g))


def test_rad_without_teacher_mistakes_is_margin_sampling():
    state = _state(teacher_error=0.0)
    rng = np.random.default_rng(0)
    assert state.mistakes == 0
    assert set(get_selection_rule("RAD")(state, rng)) == set(get_selection_rule("margin")(state, rng))


def test_strategies_pick_exactly_the_budget_and_the_oracle_skips_teacher_mistakes():
    state = _state(teacher_error=0.4)
    for name in active.STRATEGIES:
        chosen = get_selection_rule(name)(state, np.random.default_rng(1))
        assert len(chosen) == 5 and len(set(chosen)) == 5, name
    assert state.teacher_right[get_selection_rule(active.ORACLE)(state, np.random.default_rng(0))].all()


def test_restrict_keeps_the_chosen_pool_points_in_order():
    task = _task()
    small = active.restrict(task, np.array([5, 2, 9]))
    assert torch.equal(small.x_unlabelled, task.x_unlabelled[[5, 2, 9]]) and torch.equal(small.y_unlabelled, task.y_unlabelled[[5, 2, 9]])
    assert torch.equal(small.teacher_unlabelled, task.teacher_unlabelled[[5, 2, 9]]) and small.fingerprint() != task.fingerprint()
    assert len(active.restrict(task, np.zeros(0, dtype=int)).training_set().labels) == len(task.y_labelled)


def test_run_active_rounds_queries_and_validation(tmp_path):
    task = _task()
    protocol = active.ActiveProtocol(rounds=2, budget=20, pool=150, schedule=SCHEDULE)
    out = active.run_active(task, ["uniform", "margin", "RAD", "coreset (k-center greedy)"], protocol, STUDENT, cache=Cache(tmp_path))
    rounds = out["rounds"]
    assert len(rounds) == 4 * 3 and set(rounds.queries) == {0, 20, 40}
    assert rounds.test_accuracy.between(0, 1).all() and rounds.query("round > 0").teacher_error_round.between(0, 1).all()
    first = rounds[rounds["round"] == 0]
    assert first.test_accuracy.nunique() == 1  # every strategy starts from the same student
    assert len(out["alignment"]) == 10
    teachers = pd.DataFrame([{**task.summary(), "seed": task.seed}])
    records = active.to_records(rounds, teachers)
    assert {r.metric for r in records} == {"mean_test_accuracy", "mean_val_accuracy", "final_test_accuracy", "teacher_error_queried"}
    assert len(records) == 4 * 4 + 2
    mean_margin = next(r.value for r in records if r.method == "margin" and r.metric == "mean_test_accuracy")
    assert mean_margin == pytest.approx(rounds.query("strategy == 'margin' and round > 0").test_accuracy.mean())
    assert {r.value for r in records if r.method == "teacher"} == {task.teacher_accuracy("test")}
    with pytest.raises(ValueError, match="exceeds U"):
        active.run_active(task, ["margin"], active.ActiveProtocol(rounds=2, budget=20, pool=500, schedule=SCHEDULE), STUDENT, cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="unknown strategies"):
        active.run_active(task, ["bald"], protocol, STUDENT, cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="positive budget"):
        active.ActiveProtocol(rounds=1, budget=0, pool=10, schedule=SCHEDULE)
    with pytest.raises(ValueError, match="exceed the pool"):
        active.ActiveProtocol(rounds=3, budget=100, pool=200, schedule=SCHEDULE)


def test_settings_give_the_main_task_the_replicates_and_every_strategy():
    main, gated, clean = active.settings("full", replicates=9)
    assert (main.dataset, main.teacher, main.replicates, main.strategies) == ("fashion_mnist", "noisy", 9, active.STRATEGIES)
    assert gated.dataset == "cifar10" and active.ORACLE in gated.strategies and "margin" in gated.strategies
    assert clean.teacher == "clean" and set(clean.strategies) == {"margin", "RAD"}
    assert not set(active.seeds_of(active.pilot_setting("full"))) & set(active.seeds_of(main))  # pilot seeds never reused
    full = active.protocol("full")
    assert full.rounds * full.budget <= full.pool


def test_paired_by_round_by_hand():
    rows = [{"task": "t", "strategy": s, "round": r, "queries": 10 * r, "seed": seed, "test_accuracy": acc}
            for s, accs in {"margin": [0.5, 0.6], "RAD": [0.52, 0.63]}.items() for seed, base in enumerate(accs)
            for r, acc in ((0, 0.4), (1, base))]
    table = paired_by_round(pd.DataFrame(rows), "margin")
    assert len(table) == 1 and table.loc[0, "queries"] == 10 and table.loc[0, "count"] == 2
    assert table.loc[0, "mean"] == pytest.approx(2.5)  # (+2, +3) pp
    half = 0.5 * 12.706  # sem of (2, 3) is 0.707 / sqrt(2) = 0.5, t(0.975, 1) = 12.706
    assert table.loc[0, "ci_high"] - table.loc[0, "mean"] == pytest.approx(half, rel=1e-3)
    with pytest.raises(ValueError, match="baseline"):
        paired_by_round(pd.DataFrame(rows), "entropy")


def test_a_setting_runs_through_the_grid_one_cell_per_seed(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path))
    calls = []

    def fake_cell(dataset, n_labelled, teacher, seed, profile, strategies):
        calls.append(seed)
        rounds = pd.DataFrame({"strategy": strategies, "round": 1, "task": "t", "seed": seed, "test_accuracy": 0.5})
        return {"task": "t", "summary": {"task": "t", "teacher acc (test)": 0.7}, "rounds": rounds, "alignment": pd.DataFrame({"decile": [1]})}

    monkeypatch.setattr(active, "active_cell", fake_cell)
    fake_cell.__module__, fake_cell.__qualname__ = active.__name__, "active_cell"
    setting = active.ActiveSetting("fashion_mnist", 100, "noisy", ("margin", "RAD"), 2, "main")
    out = active.run_setting(setting, "quick", progress=False)
    assert calls == [0, 1] and list(out["teachers"].seed) == [0, 1] and len(out["rounds"]) == 4
    assert set(out["rounds"].role) == {"main"} and len(out["alignment"]) == 2
    assert active.run_setting(setting, "quick", progress=False)["rounds"].equals(out["rounds"]) and calls == [0, 1]  # cached
