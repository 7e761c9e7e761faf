"""Notebook 06's grid cells, driver, tables and claims on additive synthetic spaces (the notebook runs the real ones)."""

import numpy as np
import pandas as pd
import pytest

from kdlib.claims import layernas as claims
from kdlib.experiments import layernas as exp
from kdlib.nas import search
from kdlib.results import Estimate, PowerPlan, grade, paired_estimates, to_frame

SPACES = ("additive-5x3-s0", "additive-4x4-s1")
PRIMARY = claims.PRIMARY_LABEL


@pytest.fixture(scope="module")
def chosen():
    return exp.NASSettings(spaces=SPACES, quantiles=(0.3, 0.7), cnn_quantiles=(0.5,), seeds=(0, 1, 2), pilot_seeds=(1000, 1001),
                           depths=(2, 3, 4), choosing=SPACES[1])


@pytest.fixture(scope="module")
def done(chosen, tmp_path_factory):
    """Every grid of the notebook, run once in a fresh cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("KDLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
    runs = exp.run_searches(chosen, chosen.spaces, chosen.seeds, progress=False)
    again = exp.run_searches(chosen, chosen.spaces, chosen.seeds, progress=False)  # from the cache
    out = {"runs": runs, "again": again, "oracles": exp.run_oracles(chosen, chosen.spaces, progress=False),
           "fronts": exp.run_exhaustive_fronts(chosen.spaces, progress=False), "counts": exp.evaluation_counts(chosen, progress=False)}
    patch.undo()
    return out


def test_build_space_and_errors():
    space = exp.build_space("additive-5x3-s0")
    assert space.shape == (3,) * 5 and exp.is_table("additive-5x3-s0") and not exp.is_table("cnn-full")
    with pytest.raises(ValueError, match="space must be one of"):
        exp.build_space("imagenet")
    with pytest.raises(ValueError, match="trained on the fly"):
        exp._all_evaluations("cnn-quick")
    with pytest.raises(ValueError, match="strategy must be one of"):
        exp.baseline_cell(SPACES[0], 0.5, "annealing", 10, 0)


def test_layernas_cell_reports_n_f_and_the_trace():
    row = exp.layernas_cell(SPACES[0], 0.3, "largest", "equal-width", 0)
    space = exp.build_space(SPACES[0])
    result = search(space, "layernas", space.size, space.cost_quantile(0.3), 0, base="largest", bucketing="equal-width")
    assert row["evaluations"] == result.n_evaluations and row["feasible_evaluations"] == int((result.history_costs <= result.cost_limit).sum())
    assert row["bound"] == exp.evaluation_bound(space) and row["test_accuracy"] == result.report
    trace = np.asarray(row["trace"])
    assert np.isnan(trace[: row["first_feasible"] - 1]).all() and not np.isnan(trace[row["first_feasible"] - 1])
    front = exp.layernas_cell(SPACES[0], None, "cheapest", "equal-count", 0)  # no limit: every evaluation is feasible
    assert front["feasible_evaluations"] == front["evaluations"] and len(front["front"]) == len(exp.FRONT_LEVELS) and front["front_area"] >= 0


def test_baselines_get_n_and_f(done):
    runs = done["runs"]
    pd.testing.assert_frame_equal(runs.drop(columns=["trace", "front", "kept_per_layer"]), done["again"].drop(columns=["trace", "front", "kept_per_layer"]))
    constrained = runs[runs.kind == "constrained"]
    per_run = constrained.groupby(["space", "quantile", "setting", "seed"])
    assert (per_run.size() == 5).all()  # LayerNAS + 2 baselines x 2 budget notions
    for _, group in per_run:
        ln = group[group.strategy == "layernas"].iloc[0]
        assert (group[group.budget == "N"].evaluations == ln.evaluations).all()
        assert (group[group.budget == "F"].evaluations == ln.feasible_evaluations).all()
        baselines = group[group.strategy != "layernas"]
        assert (baselines.feasible_evaluations == baselines.evaluations).all() and (baselines.cost <= baselines.cost_limit).all()
    fronts = runs[runs.kind == "front"]
    assert set(fronts.budget) == {"", "N"} and len(fronts) == len(SPACES) * len(exp.SETTINGS) * 3 * 3
    assert set(runs.setting) == {exp.setting_label(*s) for s in exp.SETTINGS}
    assert set(runs.method) == {"LayerNAS", "random search", "regularized evolution", "random search (F)", "regularized evolution (F)"}


def test_budget_notions_are_checked(chosen):
    with pytest.raises(ValueError, match="budget notions"):
        exp.run_searches(chosen, chosen.spaces, (0,), budgets=("N", "total"), progress=False)


def test_records_and_tables(done, chosen):
    runs, oracles = done["runs"], done["oracles"]
    records = to_frame(exp.to_records(runs))
    names = [exp.space_name(s) for s in SPACES]
    assert exp.tasks(records, "front") == [f"{n} front" for n in names]
    assert exp.tasks(records, "constrained", names[:1]) == [f"{names[0]} @ q30", f"{names[0]} @ q70"]
    table = exp.results_table(runs, oracles, PRIMARY)
    assert len(table) == 4 and {"N", "F", "LayerNAS", "random search (F)", "oracle"} <= set(table.columns)
    sensitivity = exp.sensitivity_table(records, runs, names)
    assert len(sensitivity) == (len(SPACES) + 1) * len(exp.SETTINGS)
    assert sensitivity.loc[("claim tasks (pooled)", PRIMARY), "N"] == ""  # no mean over spaces of different sizes
    by_hand = paired_estimates(records[records.setting == PRIMARY], "LayerNAS", "random search", exp.tasks(records, "constrained", names[:1]))
    mean = np.mean([e.mean for e in by_hand.values()])
    assert sensitivity.loc[(names[0], PRIMARY), "− random search"].startswith(f"{mean:+.2f}")
    assert exp.count_table(runs).loc[names[0], "bound"] == exp.evaluation_bound(exp.build_space(SPACES[0]))
    assert len(exp.kept_table(runs, names[0])) == len(exp.SETTINGS) * 2
    synthetic = exp.synthetic_count_table(done["counts"])
    assert list(synthetic.index) == [2, 3, 4] and (synthetic["optimum found"] == 1.0).all()  # independent layers, exact
    assert len(exp.paper_vs_ours(runs, oracles, PRIMARY, {s: 0.3 for s in SPACES})) == len(SPACES)


def test_figure_frames(done):
    runs = done["runs"]
    traces = exp.trace_frame(runs, PRIMARY, {s: 0.7 for s in SPACES})
    assert set(traces.method) == {f"LayerNAS ({exp.setting_label(*s)})" for s in exp.SETTINGS} | {"random search", "regularized evolution"}
    assert traces.name.str.endswith("@ q70").all()
    fronts, picks = exp.front_frames(runs, PRIMARY, done["fronts"])
    assert set(fronts.method) == {"exhaustive", "LayerNAS", "random search", "regularized evolution"}
    assert (picks.cost <= picks.cost_limit).all() and len(picks) == len(SPACES) * 2 * 3 * 3


def fake_rule_runs(advantages: dict, space: str = "cora") -> pd.DataFrame:
    """Constrained runs whose LayerNAS validation pick leads the baselines' mean by ``advantages[setting]`` (pp)."""
    rows = []
    for setting, lead in advantages.items():
        for q in (0.25, 0.75):
            for seed in (0, 1):
                base = 0.8 + 0.01 * seed
                for strategy, value, budget in (("layernas", base + lead / 100, ""), ("random", base + 0.002, "N"), ("evolution", base - 0.002, "N"),
                                                ("random", 0.99, "F")):
                    rows.append({"space": space, "kind": "constrained", "quantile": q, "setting": setting, "strategy": strategy, "budget": budget,
                                 "seed": seed, "val_accuracy": value})
    return pd.DataFrame(rows)


def test_primary_setting_rule_by_hand():
    labels = [exp.setting_label(*s) for s in exp.SETTINGS]
    choice, table = claims.primary_setting(fake_rule_runs(dict(zip(labels, (0.1, -0.2, 0.4, 0.3)))))
    assert choice == exp.SETTINGS[2] and table["chosen"].tolist() == [False, False, True, False]
    np.testing.assert_allclose(table["advantage (pp)"], [0.1, -0.2, 0.4, 0.3])  # runs at F are ignored
    tie, _ = claims.primary_setting(fake_rule_runs(dict(zip(labels, (0.0, 0.5, 0.5, 0.1)))))
    assert tie == exp.SETTINGS[1]  # ties: the order of SETTINGS
    with pytest.raises(ValueError, match="every setting"):
        claims.primary_setting(fake_rule_runs(dict(zip(labels[:3], (0.1, 0.2, 0.3)))))
    with pytest.raises(ValueError, match="one dataset"):
        claims.primary_setting(pd.concat([fake_rule_runs(dict.fromkeys(labels, 0.0)), fake_rule_runs(dict.fromkeys(labels, 0.0), "pubmed")]))


def test_pilot_plan_by_hand():
    rows = []
    differences = {"t1": {"random search": [1.0, 2.0, 3.0], "regularized evolution": [0.0, 0.0, 0.0]},
                   "t2": {"random search": [0.0, 2.0, 4.0], "regularized evolution": [1.0, 1.0, 1.0]}}
    for task, parts in differences.items():
        for seed in range(3):
            rows.append({"experiment": task, "method": "LayerNAS", "setting": PRIMARY, "seed": seed, "metric": "test_accuracy", "value": 0.5})
            for method, values in parts.items():
                rows.append({"experiment": task, "method": method, "setting": PRIMARY, "seed": seed, "metric": "test_accuracy",
                             "value": 0.5 - values[seed] / 100})
    plan, sd, n = claims.pilot_plan(pd.DataFrame(rows), ["t1", "t2"], n_tasks=10)
    # random search: task sds 1 and 2 pp, RMS sqrt(2.5); evolution: 0; n = 1 + 2 + 2
    assert sd == pytest.approx(round(np.sqrt(2.5), 2)) and n == 5
    assert plan == PowerPlan.from_pilot(round(np.sqrt(2.5), 2), 5, 0.5, tasks=10, cap=claims.CAP)


def test_declarations_match_their_plan_and_rule():
    assert claims.PRIMARY in exp.SETTINGS and claims.CHOOSING in exp.GRAPHS
    assert claims.PLAN == PowerPlan.from_pilot(claims.PILOT_SD, claims.PILOT_N, claims.SESOI, tasks=claims.CLAIM_TASKS, cap=claims.CAP)
    decl = claims.DECLARATIONS
    assert decl["better-under-constraint"].kind == "paper" and decl["better-under-constraint"].parts == tuple(claims.PARTS)
    assert decl["better-front"].kind == "control" and decl["polynomial-evaluations"].test == "deterministic"
    assert {c.replicates for c in decl.claims} == {claims.PLAN.replicates}
    full = exp.settings("full", claims.PLAN.replicates)
    assert claims.CLAIM_TASKS == sum(len(full.limits(s)) for s in full.claim_spaces)
    assert claims.claim_names(["NB-201", "NB-Graph cora", "NB-Graph pubmed"], "NB-Graph cora") == ["NB-201", "NB-Graph pubmed"]
    assert not set(full.pilot_seeds) & set(full.seeds)


def test_evidence_grades(done):
    runs = done["runs"]
    records = to_frame(exp.to_records(runs))
    names = claims.claim_names([exp.space_name(s) for s in SPACES], exp.space_name(SPACES[1]))
    evidence = claims.evidence(records, runs[runs.strategy == "layernas"], done["counts"], names)
    assert set(evidence["better-under-constraint"]["vs random search"]) == {f"{names[0]} @ q30", f"{names[0]} @ q70"}
    assert all(isinstance(e, Estimate) for e in evidence["better-front"]["vs regularized evolution"].values())
    verdicts = {v.declaration.id: v for v in grade(claims.DECLARATIONS, evidence)}
    assert verdicts["polynomial-evaluations"].verdict == "reproduced" and "feasible picks: True" in verdicts["polynomial-evaluations"].ours
    broken = runs[runs.strategy == "layernas"].assign(bound=1)
    assert not claims.evidence(records, broken, done["counts"], names)["polynomial-evaluations"].holds


def test_settings_of_the_profiles():
    quick, full = exp.settings("quick", 7), exp.settings("full", 7)
    assert quick.seeds == (0, 1) and full.seeds == tuple(range(7))
    assert full.spaces == ("nb201", "cora", "citeseer", "pubmed", "cnn-full") and full.claim_spaces[-1] == "cnn-full"
    assert full.shown_limits == {"nb201": 0.5, "cora": 0.5, "citeseer": 0.5, "pubmed": 0.5, "cnn-full": 0.25}


def test_figures(done):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kdlib.plots import method_palette, nas_best_so_far, nas_fronts

    runs = done["runs"]
    fronts, picks = exp.front_frames(runs, PRIMARY, done["fronts"])
    cloud = pd.concat([exp.space_points(s).assign(name=exp.space_name(s)) for s in SPACES]).assign(accuracy=lambda f: 100 * f.test_accuracy)
    colours = method_palette(list(exp.LABELS.values()))
    fig = nas_fronts(cloud, fronts, picks, colours, {exp.space_name(s): "cost" for s in SPACES})
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"front: LayerNAS", "front: random search", "front: exhaustive", "picks: LayerNAS"} <= set(labels)
    stars = [c for c in fig.axes[0].collections if c.get_zorder() == 4]
    assert len(stars) == 1  # LayerNAS's picks, drawn above the baselines'
    plt.close(fig)
    # a baseline curve above the oracle (PubMed's case) stays inside the axes; a late start stays in view
    traces = pd.DataFrame({"name": "t", "method": ["b"] * 4 + ["a"] * 4, "seed": 0, "evaluation": [1, 2, 3, 4] * 2,
                           "accuracy": [70.0, 75.0, 77.0, 78.0, np.nan, np.nan, 60.0, 76.0]})
    fig = nas_best_so_far(traces, {"t": 76.5}, {"a": {"color": "C0"}, "b": {"color": "C1", "band": True}}, note="why a starts late")
    low, high = fig.axes[0].get_ylim()
    assert high >= 78.0 and low <= 60.0
    assert fig.legends[0].get_title().get_text() == "why a starts late"
    plt.close(fig)
    with pytest.raises(ValueError, match="style for every method"):
        nas_best_so_far(traces, {"t": 76.5}, {"a": {"color": "C0"}})
