"""Graded verdicts: declarations, estimates, the verdict boundaries, Holm, the gate, pooling, power."""

import json
import math
import subprocess
from dataclasses import asdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from kdlib.results import (
    Declaration, Declarations, Deterministic, Estimate, PowerPlan, classify, gate, grade, holm_levels, pooled, replicates_for,
    report_verdicts, save_results, smallest_effect_of_interest, summary_line, upper_spread, verdict_table,
)

Z = 1e6  # degrees of freedom of a "normal" estimate: its 95 % interval is mean ± 1.96 se


def interval(low: float, high: float, df: float = Z) -> Estimate:
    """An estimate whose two-sided 95 % t-interval is [low, high]."""
    return Estimate((low + high) / 2, (high - low) / 2 / stats.t.ppf(0.975, df), df, 3)


def claim(claim_id="c", kind="paper", test="difference", replicates=3, **fields) -> Declaration:
    return Declaration(id=claim_id, statement=f"statement of {claim_id}", kind=kind, formula="verified", test=test,
                       paper_value="+1", replicates=replicates, **fields)


def registry(*claims: Declaration) -> Declarations:
    return Declarations("99_test", tuple(claims), Path(__file__))


def one(declaration: Declaration, evidence, gates=None):
    return grade(registry(declaration), {declaration.id: evidence} if evidence is not None else {},
                 {declaration.id: gates} if gates is not None else None)[0]


# --- the SESOI rule and declarations ---

def test_sesoi_rule():
    assert smallest_effect_of_interest(None) == 0.5
    assert smallest_effect_of_interest(0.76) == pytest.approx(0.38)
    assert smallest_effect_of_interest(-2.17) == 0.5
    with pytest.raises(ValueError, match="explicit sesoi"):
        smallest_effect_of_interest(1.0, unit="front area")
    assert claim(paper_effect=0.6).resolved_sesoi == pytest.approx(0.3)
    assert claim(unit="s", sesoi=2.0, sesoi_reason="a second matters").resolved_sesoi == 2.0
    assert claim(test="deterministic").resolved_sesoi is None


@pytest.mark.parametrize("fields, message", [
    (dict(kind="ours"), "kind must be one of"),
    (dict(test="conjunction", parts=("a",)), "at least 2 parts"),
    (dict(parts=("a", "b")), "only a conjunction has parts"),
    (dict(replicates=0), "replicates must be"),
    (dict(test="deterministic", sesoi=0.2, sesoi_reason="r"), "deterministic check takes no SESOI"),
    (dict(sesoi=0.2), "sesoi_reason"),
    (dict(unit="s"), "declare an explicit sesoi for unit 's'"),
    (dict(ceiling="oracle"), "both its ceiling and its gate_baseline"),
    (dict(plan=PowerPlan.from_pilot(0.5, 3, 0.5, cap=10)), "differ from the power plan"),
])
def test_declaration_errors_name_the_claim(fields, message):
    base = dict(kind="paper", test="difference", replicates=3)
    with pytest.raises(ValueError, match=f"claim 'x': .*{message}"):
        Declaration(id="x", statement="s", formula="verified", paper_value="p", **{**base, **fields})


def test_declarations_need_unique_ids():
    with pytest.raises(ValueError, match=r"unique, repeated: \['a'\]"):
        registry(claim("a"), claim("a"))
    assert "a" in registry(claim("a")) and registry(claim("a"))["a"].id == "a"


# --- estimates and pooling ---

def test_paired_and_welch_estimates_by_hand():
    paired = Estimate.paired([0.01, 0.02, 0.03])
    assert (paired.mean, paired.se, paired.df, paired.n) == pytest.approx((0.02, 0.01 / math.sqrt(3), 2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        Estimate.paired([1.0])
    a, b = [0.3, 0.5, 0.4, 0.6], [0.1, 0.2, 0.15]
    welch = Estimate.welch(a, b)
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert welch.interval(0.95) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert welch.df == pytest.approx(expected.df)


def test_pooling_weights_tasks_equally():
    two, twenty = [1.0, 3.0], [0.0 + 0.1 * (-1) ** i for i in range(20)]  # task means 2.0 and 0.0
    small, large = Estimate.paired(two), Estimate.paired(twenty)
    both = pooled({"small": small, "large": large})
    assert both.mean == pytest.approx(1.0)  # not the mean over the 22 replicates (0.18)
    assert both.se == pytest.approx(math.sqrt(small.se**2 + large.se**2) / 2)
    expected_df = (small.se**2 + large.se**2) ** 2 / (small.se**4 / 1 + large.se**4 / 19)
    assert both.df == pytest.approx(expected_df) and both.n == 22
    assert pooled({"only": small}) is small
    with pytest.raises(ValueError, match="no task"):
        pooled({})


# --- verdict boundaries ---

@pytest.mark.parametrize("low, high, verdict", [
    (0.1, 0.4, "reproduced"),  # lower end above 0, although the whole interval is below the SESOI
    (-0.2, 0.3, "contradicted"),  # any effect is below the SESOI
    (-0.9, 2.7, "inconclusive"),
    (-1.0, -0.2, "contradicted"),  # significant the other way
    (0.0, 0.6, "inconclusive"),  # 0 is not beyond 0
])
def test_difference_boundaries(low, high, verdict):
    assert classify("difference", low, high, 0.5) == verdict
    assert one(claim(kind="control"), {"task": interval(low, high)}).verdict == verdict


def test_non_inferiority_at_exactly_minus_sesoi():
    assert classify("non_inferiority", -0.5, 1.0, 0.5) == "inconclusive"  # lower end at -SESOI: not reproduced
    assert classify("non_inferiority", -0.4999, 1.0, 0.5) == "reproduced"
    assert classify("non_inferiority", -2.0, -0.5, 0.5) == "inconclusive"  # upper end at -SESOI: not contradicted
    assert classify("non_inferiority", -2.0, -0.5001, 0.5) == "contradicted"
    graded = one(claim(test="non_inferiority"), {"task": interval(-0.45, 0.3)})
    assert graded.verdict == "reproduced" and graded.p_value < 0.05


def test_direction_and_size_check():
    fewer = claim(direction=-1, paper_effect=-0.3)  # "A makes fewer mistakes": negative is the paper's direction
    graded = one(fewer, {"task": interval(-1.5, -0.6)})
    assert graded.verdict == "reproduced" and graded.size_check == "below"  # in the paper's direction, 0.3 lies below [0.6, 1.5]
    assert one(claim(paper_effect=1.0), {"task": interval(0.5, 2.0)}).size_check == "inside"
    assert one(claim(paper_effect=3.0), {"task": interval(0.5, 2.0)}).size_check == "above"
    assert one(claim(paper_effect=0.2), {"task": interval(0.5, 2.0)}).size_check == "below"
    assert one(claim(), {"task": interval(0.5, 2.0)}).size_check == "n/a"


def test_conjunction_needs_every_part_and_reports_the_weakest():
    both = claim(test="conjunction", parts=("vs uniform", "vs margin"), kind="control")
    graded = one(both, {"vs uniform": {"t": interval(0.1, 0.4)}, "vs margin": {"t": interval(-0.2, 0.3)}})
    assert graded.verdict == "contradicted"
    assert (graded.ci_low, graded.ci_high) == pytest.approx((-0.2, 0.3))
    assert [p.verdict for p in graded.part_results] == ["reproduced", "contradicted"]
    assert "vs margin +0.05 pp [-0.20, +0.30] (1 task, 3 pairs, weakest)" in graded.ours
    assert one(both, {"vs uniform": {"t": interval(0.1, 0.4)}, "vs margin": {"t": interval(-0.9, 2.7)}}).verdict == "inconclusive"
    assert one(both, {"vs uniform": {"t": interval(0.1, 0.4)}, "vs margin": {"t": interval(0.2, 2.7)}}).verdict == "reproduced"
    with pytest.raises(ValueError, match="must map its parts"):
        one(both, {"vs uniform": {"t": interval(0.1, 0.4)}})


def test_trend_paired_and_welch():
    shrink = claim(test="trend", kind="control")
    small, large = [2.0, 2.5, 3.0, 2.2], [0.1, 0.4, -0.2]
    welch = one(shrink, {"data": Estimate.welch(small, large)})
    expected = stats.ttest_ind(small, large, equal_var=False).confidence_interval(0.95)
    assert (welch.ci_low, welch.ci_high) == pytest.approx((expected.low, expected.high))
    assert welch.verdict == "reproduced" and welch.ours.endswith("1 task, 7 replicates")
    paired = one(shrink, {"data": Estimate.paired([0.3, -0.2, 0.1])})
    assert paired.verdict == "inconclusive" and paired.replicates_to_settle is not None


def test_pooled_reproduced_with_a_contradicted_task_is_inconclusive():
    tasks = {"strong": interval(2.0, 3.0), "flat": interval(-0.1, 0.1)}
    graded = one(claim(kind="control"), tasks)
    assert graded.ci_low > 0  # the pool alone would be reproduced
    assert graded.verdict == "inconclusive"
    assert [(t.label, t.verdict) for t in graded.tasks] == [("strong", "reproduced"), ("flat", "contradicted")]
    assert graded.ours.endswith("2 tasks, 6 pairs")


def test_replicates_to_settle_from_the_observed_spread():
    estimate = Estimate.paired([-0.9, 0.6, 2.1])  # sd 1.5, n 3
    graded = one(claim(kind="control"), {"t": estimate})
    assert graded.verdict == "inconclusive"
    assert graded.replicates_to_settle == replicates_for(1.5, 3, 0.5)


# --- Holm ---

def test_holm_levels_and_stopping_rule():
    assert holm_levels({"a": 0.03, "b": 0.001, "c": 0.01}) == pytest.approx({"b": 1 - 0.05 / 3, "c": 1 - 0.05 / 2, "a": 0.95})

    def with_p(p: float, sign: int = 1) -> dict:
        return {"t": Estimate(sign * stats.norm.isf(p / 2), 1.0, Z, 3)}

    claims = [claim("first"), claim("second"), claim("third"), claim("control", kind="control"), claim("check", test="deterministic")]
    evidence = {"first": with_p(0.001), "second": with_p(0.01, sign=-1), "third": with_p(0.03), "control": with_p(0.03),
                "check": Deterministic(True, "N <= bound")}
    verdicts = {v.declaration.id: v for v in grade(registry(*claims), evidence)}
    assert {i: verdicts[i].confidence for i in ("first", "second", "third", "control")} == pytest.approx(
        {"first": 1 - 0.05 / 3, "second": 1 - 0.05 / 2, "third": 0.95, "control": 0.95})
    assert verdicts["first"].verdict == "reproduced"
    assert verdicts["second"].verdict == "contradicted"  # significant the other way: not reproduced, so Holm stops
    assert verdicts["third"].ci_low > 0 and verdicts["third"].verdict == "inconclusive"  # would be reproduced at 95 %
    assert verdicts["control"].verdict == "reproduced"  # controls take no part in Holm
    assert verdicts["check"].verdict == "reproduced" and verdicts["check"].confidence is None


# --- the headroom gate ---

def test_gate_keeps_a_task_whose_ceiling_clears_the_sesoi():
    assert gate({"room": interval(0.6, 1.0), "none": interval(0.3, 1.0), "edge": Estimate(0.5, 0.0, 2, 3)}, 0.5) == (["room", "edge"], ["none"])


def test_gated_out_tasks_are_excluded_and_counted():
    gated = claim("gated", ceiling="oracle", gate_baseline="KD")
    evidence = {"room": interval(0.2, 0.8), "no room": interval(-3.0, -1.0), "text": interval(0.1, 0.9)}
    ceilings = {"room": interval(0.7, 1.2), "no room": interval(-0.5, 0.4), "text": None}
    graded = one(gated, evidence, ceilings)
    assert graded.gated_out == ("no room",) and [t.label for t in graded.tasks] == ["room", "text"]
    assert graded.verdict == "reproduced"
    assert "kept 1 of 2 tasks; 1 without a ceiling entered ungated" in graded.gate
    with pytest.raises(ValueError, match=r"missing \['text'\]"):
        one(gated, evidence, {"room": interval(0.7, 1.2), "no room": interval(-0.5, 0.4)})
    assert one(gated, evidence).gate.startswith("NOT GATED")
    with pytest.raises(ValueError, match="declares no ceiling"):
        one(claim(), evidence, ceilings)


def test_all_gated_out_is_not_testable_and_leaves_holm():
    claims = (claim("gated", ceiling="oracle", gate_baseline="KD"), claim("other"))
    verdicts = grade(registry(*claims), {"gated": {"t": interval(0.2, 0.8)}, "other": {"t": interval(0.2, 0.8)}},
                     {"gated": {"t": interval(-0.5, 0.4)}})
    assert verdicts[0].verdict == "not testable here" and verdicts[0].gated_out == ("t",) and verdicts[0].estimate is None
    assert verdicts[1].confidence == pytest.approx(0.95)  # one graded paper claim: m = 1


# --- evidence bookkeeping ---

def test_undeclared_and_missing_evidence_raise():
    with pytest.raises(ValueError, match="claim 'x' has no declaration in 99_test"):
        grade(registry(claim("a")), {"a": {"t": interval(0.1, 0.4)}, "x": {"t": interval(0.1, 0.4)}})
    with pytest.raises(ValueError, match="claim 'a' is declared in 99_test but has no evidence"):
        grade(registry(claim("a")), {})
    with pytest.raises(ValueError, match="map each task to an Estimate"):
        grade(registry(claim("a")), {"a": {"t": 0.3}})
    with pytest.raises(ValueError, match="Deterministic"):
        grade(registry(claim("a", test="deterministic")), {"a": {"t": interval(0.1, 0.4)}})


def test_out_of_scope_claims_are_listed_not_graded():
    far = claim("far", out_of_scope="needs ImageNet-1K scale")
    verdicts = grade(registry(far, claim("near")), {"near": {"t": interval(0.1, 0.4)}})
    assert verdicts[0].verdict == "out of scope here" and verdicts[0].estimate is None and "ImageNet-1K" in verdicts[0].ours
    assert verdicts[1].confidence == pytest.approx(0.95)  # not counted in Holm
    records = [v.to_record() for v in verdicts]
    assert summary_line("99_test", records) == (
        "99_test: 1 paper claim — 1 reproduced, 0 contradicted, 0 inconclusive; 1 out of scope here; 0 controls")
    with pytest.raises(ValueError, match="out of scope here and takes no evidence"):
        grade(registry(far), {"far": {"t": interval(0.1, 0.4)}})


# --- power ---

def test_upper_spread_and_replicates_by_hand():
    # chi2 with 2 df: ppf(0.2) = -2 ln(0.8), so the upper 80 % bound of sd = 1 on 3 replicates is sqrt(1 / -ln 0.8)
    assert upper_spread(1.0, 3) == pytest.approx(math.sqrt(1 / -math.log(0.8)))
    assert upper_spread(2.0, 5) == pytest.approx(2 * math.sqrt(4 / 1.6487766), rel=1e-6)
    # s_up = 0.5 * 2.11694 = 1.05847; goal 0.7 * 0.5 = 0.35: n = 37 gives t(0.975, 36) * s_up / sqrt(37) = 0.3529, n = 38 gives 0.3479
    assert replicates_for(0.5, 3, 0.5) == 38
    # over 4 tasks, df = 4n - 4: n = 9 gives 0.3593, n = 10 gives 0.3394
    assert replicates_for(0.5, 3, 0.5, tasks=4) == 10
    assert replicates_for(0.5, 3, 0.5, cap=10) == 10
    plan = PowerPlan.from_pilot(0.5, 3, 0.5, cap=10)
    assert (plan.replicates, plan.capped) == (10, True)
    assert PowerPlan.from_pilot(0.5, 3, 0.5, cap=50).capped is False
    assert claim(replicates=10, plan=plan).plan.replicates == 10
    with pytest.raises(ValueError, match="n >= 2"):
        upper_spread(1.0, 1)


# --- provenance of the declarations ---

def test_declared_commit_in_a_temporary_repository(tmp_path):
    module = tmp_path / "claims.py"
    module.write_text("DECLARATIONS = ...\n")
    declarations = Declarations("99_test", (claim(),), module)
    outside = declarations.declared_commit()
    assert outside in ("unknown", "uncommitted")  # tmp_path may itself sit inside some repository

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    assert declarations.declared_commit() == "uncommitted"
    git("add", "claims.py")
    git("commit", "-q", "-m", "declare")
    head = git("rev-parse", "HEAD")
    assert declarations.declared_commit() == head
    module.write_text("DECLARATIONS = ...  # changed\n")
    assert declarations.declared_commit() == f"{head}-dirty"


# --- output ---

def test_verdicts_serialise_and_save(tmp_path, monkeypatch):
    monkeypatch.setattr("kdlib.paths.repo_root", lambda: tmp_path)
    verdicts = grade(registry(claim("a", paper_effect=1.0), claim("b", kind="control")),
                     {"a": {"t": interval(-0.9, 2.7)}, "b": {"t": interval(0.1, 0.4)}})
    json.dumps(asdict(verdicts[0]))
    path = save_results("99_test", "quick", [0, 1, 2], 1.0, [], verdicts=verdicts)
    payload = json.loads(path.read_text())
    assert {"id", "kind", "test", "sesoi", "replicates", "verdict", "provisional"} <= set(payload["claims"][0])
    assert payload["claims"][0]["sesoi"] == 0.5 and payload["declarations_commit"] == verdicts[0].declarations_commit
    assert list(payload).index("declarations_commit") == list(payload).index("claims") + 1
    with pytest.raises(ValueError, match="not both"):
        save_results("99_test", "quick", [0], 1.0, [], claims=[object()], verdicts=verdicts)
    with pytest.raises(ValueError, match="other notebooks"):
        save_results("98_other", "quick", [0], 1.0, [], verdicts=verdicts)


def test_tables_and_loud_lines(capsys):
    verdicts = grade(registry(claim("ctl", kind="control"), claim("pap", paper_effect=1.0)),
                     {"ctl": {"t": interval(0.1, 0.4)}, "pap": {"t1": interval(-0.9, 2.7), "t2": interval(-0.5, 2.0)}})
    table = verdict_table(verdicts)
    assert list(table.index) == ["pap", "ctl"] and table.loc["pap", "verdict"] == "inconclusive"
    assert "per task: 2 inconclusive" in table.loc["pap", "notes"] and "settled by ~" in table.loc["pap", "notes"]
    report_verdicts(verdicts, "full")
    assert "PAPER CLAIM INCONCLUSIVE [pap]" in capsys.readouterr().out
    report_verdicts(verdicts, "quick")
    assert "not verdicts of the paper" in capsys.readouterr().out


def test_forest_plot_rows_and_panels():
    from kdlib.plots import forest

    verdicts = grade(registry(claim("a", paper_effect=1.0), claim("b", test="deterministic"), claim("c", kind="control")),
                     {"a": {"t": interval(-0.9, 2.7)}, "b": Deterministic(True, "holds"), "c": {"t": interval(0.1, 0.4)}})
    figure = forest(verdicts, controls=True)
    top, bottom = figure.axes[:2]
    assert [t.get_text() for t in top.get_yticklabels()] == ["a", "b"] and [t.get_text() for t in bottom.get_yticklabels()] == ["c"]
    assert any(t.get_text().startswith("inconclusive") for t in top.texts)
    with pytest.raises(ValueError, match="do not fit one ax"):
        forest(verdicts, ax=top, controls=True)
    with pytest.raises(ValueError, match="no claim"):
        forest([v for v in verdicts if v.declaration.kind == "control"])
    assert np.isclose(forest(verdicts[:1]).axes[0].patches[0].get_width(), 1.0)  # the SESOI band spans -0.5 .. +0.5
    plt.close("all")
