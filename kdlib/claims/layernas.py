"""Notebook 06's claims, declared before its re-run (issue 20): LayerNAS (Fan et al. 2023) against random search and
regularized evolution, with its two open choices reported rather than hidden in a default.

Notes: ../shared/papers/06_layernas.md. Algorithm 1 could not be read: LayerNAS is reconstructed ([R]); its base
policy and bucketing are unknown, so all four settings run everywhere and one is primary.

**The primary setting is fixed by a rule, stated here before the run** (:func:`primary_setting`): on
NAS-Bench-Graph **Cora** (the benchmark's first dataset and the quick profile's), at its three cost limits and over
the pilot's search seeds (1000-1009), each setting scores the mean of LayerNAS's pick *validation* accuracy minus the
mean of random search's and regularized evolution's picks (baselines at LayerNAS's N); the highest score wins (ties:
the order of ``SETTINGS``). Cora is then left out of every claim. Why this rule: it chooses on the quantity the claim
tests (LayerNAS's lead over the baselines at equal N) but on the search signal (validation accuracy) and on a task the
claim never sees; NAS-Bench-Graph is the only table with separate validation and test accuracies (analog-nasbench's
NB-201 has one accuracy per cell, so a choice made on it would be graded on the same numbers); Cora rather than
PubMed so that the rule cannot drop the task where the previous regime failed. The rule was run once (table lookups)
and its outcome is recorded in ``PRIMARY``; the notebook recomputes it from the cached cells and checks it.

**Replicates** (search seeds) come from the power rule on a pilot of 10 search seeds (1000-1009, never reused) in the
primary setting on the claim's table tasks; the CNN task is not in the pilot (it would train ~85 architectures first).

The previous regime's verdicts (base = largest only, H = 8, k = 2, equal-width buckets; its front measure switched
after a quick-profile look) are frozen in ``results/provisional/06_layernas.json``; this module has no
``provisional_evidence`` any more, so :mod:`kdlib.results.provisional` leaves them as they are.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kdlib.experiments.layernas import BASELINES, LABELS, SETTINGS, method_label, setting_label, tasks
from kdlib.results import Declaration, Declarations, Deterministic, PowerPlan, paired_estimates

NOTES = "notes 06_layernas.md"
PARTS = {f"vs {LABELS[s]}": method_label(s) for s in BASELINES}  # conjunction part -> baseline at LayerNAS's N
SESOI = 0.5  # pp: the project rule, no paper number
CAP = 20  # search seeds per task the 10-minute cold budget allows (measured: ~7 s of table cells per seed for all spaces; ~5 min of CNN training cold)
CHOOSING = "cora"  # the rule's dataset, left out of the claims

# The rule's outcome, run once on Cora's cells (3 limits x pilot seeds 1000-1009 per setting): LayerNAS's validation lead
# over the baselines' mean, pp (sd over the 30 runs): largest / equal-width +0.030 (0.28), largest / equal-count -0.076
# (0.26), cheapest / equal-width -0.091 (0.24), cheapest / equal-count -0.066 (0.24).
PRIMARY = ("largest", "equal-width")
PRIMARY_LABEL = setting_label(*PRIMARY)

# From the pilot (primary setting, baselines at N, 9 table tasks x 10 seeds 1000-1009): the RMS over tasks of the sd of
# the paired LayerNAS - baseline differences, the larger of the two parts, in pp; n = 1 + the pooled degrees of freedom.
PILOT_SD = 0.69
PILOT_N = 82
CLAIM_TASKS = 10  # NB-201, CiteSeer and PubMed at three limits, the CNN space at one (its 25th cost percentile)
PLAN = PowerPlan.from_pilot(PILOT_SD, PILOT_N, SESOI, tasks=CLAIM_TASKS, cap=CAP)

DECLARATIONS = Declarations(
    notebook="06_layernas",
    claims=(
        Declaration(
            id="better-under-constraint",
            statement=f"Under a cost limit, LayerNAS's pick ({PRIMARY_LABEL}, the primary setting) beats random search AND regularized "
                      "evolution given the same number N of evaluations (test accuracy; each part an equal-weight pool over the "
                      "space × limit tasks the primary-setting rule did not use: all but NAS-Bench-Graph Cora)",
            kind="paper", formula="reconstructed", test="conjunction", parts=tuple(PARTS), replicates=PLAN.replicates, plan=PLAN,
            paper_value="superior to strong baselines on NATS-Bench and MobileNet spaces (no per-baseline numbers readable)",
            source=f"{NOTES} abstract [V] ('consistently superior ... vs strong baselines')",
        ),
        Declaration(
            id="polynomial-evaluations",
            statement="LayerNAS's evaluations stay within its k·H·|S|·L-type bound, not the size of the space, and its pick under a "
                      "limit is always feasible (every setting, space, limit and seed, and additive spaces of growing depth)",
            kind="paper", formula="reconstructed", test="deterministic", replicates=PLAN.replicates, paper_value="O(H·|S|·L) evaluations",
            source=f"{NOTES} abstract [V] (complexity O(H·|S|·L)); feasibility is part of our check",
        ),
        Declaration(
            id="better-front",
            statement=f"One unconstrained LayerNAS run ({PRIMARY_LABEL}) traces a better accuracy-vs-cost front than random search AND "
                      "evolution at its N (front area; each part an equal-weight pool over the table spaces but Cora)",
            kind="control", formula="reconstructed", test="conjunction", parts=tuple(PARTS), replicates=PLAN.replicates,
            paper_value="one search yields models along the accuracy-cost trade-off",
            source=f"{NOTES} §7 and claim 3: our expectation [R]; the paper describes the bucketed search, the notes quote no "
                   "comparison of its front with the baselines'",
        ),
    ),
    path=Path(__file__),
)


def primary_setting(runs: pd.DataFrame) -> tuple[tuple[str, str], pd.DataFrame]:
    """The primary-setting rule (module docstring) on the choosing dataset's runs.

    Args:
        runs: :func:`kdlib.experiments.layernas.run_searches` rows of one space, every setting of ``SETTINGS``,
            constrained runs with the baselines at N (other rows are ignored).

    Returns:
        The chosen ``(base, bucketing)`` and the score table (pp, per setting: the mean advantage, its sd over
        limit x seed, the count, and LayerNAS's mean validation pick).

    Raises:
        ValueError: runs of several spaces, or a setting without runs.
    """
    constrained = runs[(runs.kind == "constrained") & (runs.budget != "F")]
    if constrained.space.nunique() != 1:
        raise ValueError(f"the rule reads one dataset's runs, got {sorted(constrained.space.unique())}")
    wide = constrained.pivot_table(index=["setting", "quantile", "seed"], columns="strategy", values="val_accuracy")
    advantage = (100 * (wide["layernas"] - wide[list(BASELINES)].mean(axis=1))).rename("advantage")
    labels = [setting_label(*s) for s in SETTINGS]
    missing = sorted(set(labels) - set(advantage.index.get_level_values("setting")))
    if missing:
        raise ValueError(f"the rule needs every setting; missing {missing}")
    grouped = advantage.groupby(level="setting")
    table = pd.DataFrame({"advantage (pp)": grouped.mean(), "sd (pp)": grouped.std(), "runs": grouped.count(),
                          "LayerNAS validation pick (%)": 100 * wide["layernas"].groupby(level="setting").mean()}).loc[labels]
    best = labels[int(np.argmax(table["advantage (pp)"].to_numpy()))]  # argmax takes the first of equal scores
    table["chosen"] = [label == best for label in labels]
    return SETTINGS[labels.index(best)], table


def pilot_plan(records: pd.DataFrame, experiments: Sequence[str], n_tasks: int = CLAIM_TASKS) -> tuple[PowerPlan, float, int]:
    """The replicate plan from the pilot's records (primary setting, baselines at N) on ``experiments``.

    The spread is the RMS over tasks of each task's sd of paired differences (what the pooled interval's width
    depends on), the larger of the two parts, rounded to 0.01 pp; n = 1 + the pooled degrees of freedom.

    Returns:
        The plan, the spread and n it was computed from.
    """
    primary = records[records.setting == PRIMARY_LABEL]
    spreads = []
    for baseline in PARTS.values():
        estimates = paired_estimates(primary, method_label("layernas"), baseline, experiments)
        spreads.append((math.sqrt(np.mean([e.spread**2 for e in estimates.values()])), sum(e.n - 1 for e in estimates.values()) + 1))
    sd, n = max(spreads)
    return PowerPlan.from_pilot(round(sd, 2), n, SESOI, tasks=n_tasks, cap=CAP), round(sd, 2), n


def claim_names(space_names: Sequence[str], choosing_name: str) -> list[str]:
    """The spaces the claims pool: every space but the choosing dataset."""
    return [n for n in space_names if n != choosing_name]


def _evaluation_check(layernas_runs: pd.DataFrame, counts: pd.DataFrame) -> Deterministic:
    """Every LayerNAS run's N within its bound (real spaces, every setting; additive spaces), and a feasible pick in
    every constrained run."""
    within = bool((layernas_runs.evaluations <= layernas_runs.bound).all() and (counts.evaluations <= counts.bound).all())
    constrained = layernas_runs[layernas_runs.kind == "constrained"]
    feasible = bool((constrained.found.astype(bool) & (constrained.cost <= constrained.cost_limit)).all() and counts.feasible_pick.all())
    worst = (layernas_runs.evaluations / layernas_runs.bound).max()
    grow = counts.groupby("layers").agg(n=("evaluations", "mean"), size=("space_size", "first"))
    value = (f"N ≤ bound in every run: {within} ({len(layernas_runs)} runs on the real spaces, {layernas_runs.setting.nunique()} settings, "
             f"largest N / bound {worst:.2f}); synthetic L={grow.index.min()}→{grow.index.max()}: N {grow.n.iloc[0]:.0f}→{grow.n.iloc[-1]:.0f} "
             f"while |S|^L {grow['size'].iloc[0]:,}→{grow['size'].iloc[-1]:,}; feasible picks: {feasible}")
    return Deterministic(within and feasible, value)


def evidence(records: pd.DataFrame, layernas_runs: pd.DataFrame, counts: pd.DataFrame, pooled_names: Sequence[str]) -> dict:
    """Each claim's evidence: the primary setting's paired differences (pp) per task of the spaces ``pooled_names``
    (baselines at N), and the deterministic evaluation check over every LayerNAS run."""
    primary = records[records.setting == PRIMARY_LABEL]
    ln = method_label("layernas")

    def versus(kind: str, metric: str) -> dict:
        chosen = tasks(primary, kind, pooled_names)
        return {part: paired_estimates(primary, ln, baseline, chosen, metric=metric) for part, baseline in PARTS.items()}

    return {"better-under-constraint": versus("constrained", "test_accuracy"), "better-front": versus("front", "front_area"),
            "polynomial-evaluations": _evaluation_check(layernas_runs, counts)}

