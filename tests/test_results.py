import json

import numpy as np
import pytest

from kdlib.results import Claim, Record, aggregate, mean_std_table, paired_comparison, readme_table, save_results, update_readme


def _records():
    out = []
    for seed, (a, b) in enumerate([(0.80, 0.79), (0.82, 0.80), (0.84, 0.81)]):
        out += [Record("exp", "A", "n=10", seed, "acc", a), Record("exp", "B", "n=10", seed, "acc", b)]
    return out


def test_aggregate_mean_std_n():
    summary = aggregate(_records()).set_index("method")
    assert summary.loc["A", "mean"] == pytest.approx(0.82)
    assert summary.loc["A", "std"] == pytest.approx(0.02)
    assert summary.loc["B", "n"] == 3
    assert mean_std_table(_records(), index="experiment", columns="method").loc["exp", "A"] == "82.00 ± 2.00"


def test_paired_comparison_by_hand():
    comparison = paired_comparison(_records(), "A", "B", experiment="exp")
    # differences 0.01, 0.02, 0.03: mean 0.02, std 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3) = 0.024841
    assert comparison.mean_diff == pytest.approx(0.02)
    assert comparison.std_diff == pytest.approx(0.01)
    assert comparison.ci_low == pytest.approx(0.02 - 0.024841, abs=1e-6)
    assert not comparison.a_beats_b  # the interval still straddles 0 with 3 seeds
    assert comparison.points() == "+2.00 pp [-0.48, +4.48]"
    with pytest.raises(ValueError, match="must both appear"):
        paired_comparison(_records(), "A", "C")


def test_results_file_schema(tmp_path, monkeypatch):
    monkeypatch.setattr("kdlib.paths.repo_root", lambda: tmp_path)
    claim = Claim("c1", "A beats B", "+1", "+2", True)
    path = save_results("99_test", "quick", [0, 1, 2], 12.34, _records(), [claim])
    assert path == tmp_path / "build" / "quick" / "results" / "99_test.json"  # quick never writes results/
    payload = json.loads(path.read_text())
    assert {"notebook", "profile", "seeds", "wall_time_s", "provenance", "records", "claims"} <= set(payload)
    assert {"git_commit", "versions"} <= set(payload["provenance"])
    assert set(payload["records"][0]) == {"experiment", "method", "setting", "seed", "metric", "value"}
    assert set(payload["claims"][0]) == {"id", "text", "paper_value", "ours_value", "holds"}
    with pytest.raises(ValueError, match="profile"):
        save_results("99_test", "fast", [0], 1.0, [], [])


def _graded(notebook, provisional, tmp_path, mean=0.1):
    from kdlib.results import Declaration, Declarations, Deterministic, Estimate, grade
    from kdlib.results.records import with_verdicts

    declarations = Declarations(notebook, (
        Declaration(id="c", statement="LELP beats KD", kind="paper", formula="verified", test="difference", paper_value="+3",
                    replicates=3, paper_effect=3.0),
        Declaration(id="k", statement="teacher beats student", kind="control", formula="n/a", test="deterministic", paper_value="-",
                    replicates=3),
    ), tmp_path / "claims.py")
    verdicts = grade(declarations, {"c": {"t": Estimate(mean, 0.1, 2, 3)}, "k": Deterministic(True, "91 vs 69")}, provisional=provisional)
    return with_verdicts({"notebook": notebook, "claims": []}, verdicts)


def test_readme_table_and_markers(tmp_path):
    results = tmp_path / "results"
    (results / "provisional").mkdir(parents=True)
    (results / "01_x.json").write_text(json.dumps(_graded("01_x", True, tmp_path)))
    (results / "02_y.json").write_text(json.dumps({"notebook": "02_y", "claims": [
        {"id": "c", "text": "old", "paper_value": "+3", "ours_value": "+0.1", "holds": False}]}))
    table = readme_table(results)
    assert "- 01_x: 1 paper claim — 0 reproduced, 0 contradicted, 1 inconclusive; 1 control †" in table
    assert "| 01_x | LELP beats KD (`c`) | verified | +3 | +0.10 pp [-0.33, +0.53], 1 task, 3 pairs | 95 % | inconclusive † | above |" in table
    assert "| 01_x | teacher beats student (`k`) | 91 vs 69 |  | reproduced † |  |" in table
    assert "- 02_y: not graded (first-regime yes / no claims)" in table
    assert "None yet" in table
    # 01_x re-run on declared claims: its provisional verdicts move to the previous regime
    (results / "provisional" / "01_x.json").write_text((results / "01_x.json").read_text())
    (results / "01_x.json").write_text(json.dumps(_graded("01_x", False, tmp_path, mean=2.0)))
    current, previous = readme_table(results).split("### Previous regime (provisional verdicts)")
    assert "| 01_x | LELP beats KD (`c`) | verified | +3 | +2.00 pp [+1.57, +2.43], 1 task, 3 pairs | 95 % | reproduced | above |" in current
    assert "- 01_x: 1 paper claim — 0 reproduced, 0 contradicted, 1 inconclusive; 1 control †" in previous
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(readme)
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest\n")
    assert update_readme(readme) and "reproduced" in readme.read_text() and readme.read_text().endswith("rest\n")
    assert not update_readme(readme)


def test_welch_difference_matches_scipy():
    from scipy import stats as st

    from kdlib.results import welch_difference

    a, b = [0.3, 0.5, 0.4, 0.6], [0.1, 0.2, 0.15]
    out = welch_difference(a, b)
    assert out["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    expected = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert out["ci_low"] == pytest.approx(expected.low) and out["ci_high"] == pytest.approx(expected.high)
    with pytest.raises(ValueError, match="non-empty"):
        welch_difference([], [1.0])


def test_confidence_widens_the_interval_and_pooled_comparison_pools_experiments():
    from kdlib.results import per_seed_differences, pooled_comparison

    records = []
    for experiment, diffs in (("e1", [0.02, 0.04, 0.03]), ("e2", [0.01, 0.00, 0.02])):
        for seed, d in enumerate(diffs):
            records += [Record(experiment, "A", "-", seed, "test_accuracy", 0.5 + d), Record(experiment, "B", "-", seed, "test_accuracy", 0.5)]
    narrow = paired_comparison(records, "A", "B", experiment="e1")
    wide = paired_comparison(records, "A", "B", confidence=0.99, experiment="e1")
    assert wide.ci_low < narrow.ci_low and wide.mean_diff == pytest.approx(narrow.mean_diff)
    pooled = pooled_comparison(records, "A", "B", ["e1", "e2"])
    assert pooled.n == 6 and pooled.mean_diff == pytest.approx(0.02)
    assert sorted(np.round(per_seed_differences(records, "A", "B", ["e2"]), 6)) == [0.0, 0.01, 0.02]
    with pytest.raises(ValueError, match="confidence"):
        paired_comparison(records, "A", "B", confidence=1.0, experiment="e1")


def test_headroom_comparison_by_hand():
    from kdlib.results import headroom_comparison

    values = {"base": [0.50, 0.60, 0.55], "oracle": [0.70, 0.80, 0.75], "m": [0.62, 0.71, 0.66]}  # halfway: 0.60, 0.70, 0.65
    records = [Record("e", method, "-", seed, "test_accuracy", v) for method, vs in values.items() for seed, v in enumerate(vs)]
    comparison = headroom_comparison(records, "m", "base", "oracle", ["e"])
    assert comparison.n == 3 and comparison.mean_diff == pytest.approx(0.0133333, abs=1e-6)
    assert headroom_comparison(records, "m", "base", "oracle", ["e"], fraction=0.0).mean_diff == pytest.approx(0.1133333, abs=1e-6)
    with pytest.raises(ValueError, match="fraction"):
        headroom_comparison(records, "m", "base", "oracle", ["e"], fraction=2)
    with pytest.raises(ValueError, match="do not appear"):
        headroom_comparison(records, "x", "base", "oracle", ["e"])
