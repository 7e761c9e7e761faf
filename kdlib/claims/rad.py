"""Notebook 04's claims, declared before its re-run with CNN students (issue 18): RAD (Baykal et al. 2023) against
uniform, margin, entropy and coreset sampling at equal numbers of teacher queries, the estimated m against the true
m, and the controls (a clean teacher, the correctness-aware variants, the student against its teacher).

Notes: ../shared/papers/04_robust_active_distillation.md. The game's payoff and solution are not verified ([R]), so
every claim is on a reconstructed formula. No paper number could be read: every SESOI is the project's default.
The ceiling is the mistake-skipping oracle (margin sampling that skips the points the teacher gets wrong): a task
enters a gated claim only if the oracle's gain over the claim's baseline, in validation accuracy averaged over the
rounds, has a lower 95 % end >= the SESOI. Noisy Fashion-MNIST (|L| = 100) is the main task; noisy CIFAR-10
(|L| = 500, fewer seeds and strategies: the budget's cut) enters the claims it has strategies for only through that
gate. Replicates come from the power rule on a pilot of RAD − margin on the main task (seeds 1001-1003, never
reused), with a floor of 9 (issue 18) and the budget's cap. :func:`pilot_plan` recomputes the plan from the pilot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from kdlib.experiments.active import ORACLE, PILOT_SEEDS
from kdlib.results import Declaration, Declarations, Estimate, PowerPlan, paired_estimates, pooled

NOTES = "notes 04_robust_active_distillation.md"
ACCURACY, VALIDATION, MISTAKES = "mean_test_accuracy", "mean_val_accuracy", "teacher_error_queried"  # means over the query rounds
SESOI = 0.5  # pp: the project's default (no paper number could be read)
FLOOR, CAP = 9, 9  # replicates: issue 18's floor (a half-width near 0.42 at the measured 0.54 pp spread); the budget's cap

# From the pilot (3 replicates of uniform, margin and RAD on the main task, seeds 1001-1003): the sd of the paired
# RAD - margin differences in mean test accuracy over rounds, in pp (mean +0.71); the power rule asks for 267, the
# budget caps them at 9 (issue 18's floor). The notebook asserts the declared plan matches its pilot. Re-measured on
# 2026-12-02, before the full run, on a new machine and the engine that runs grey images channels-last (cold CPU
# training is not bit-reproducible across either); the same seeds had given 0.17 (mean -0.10; the rule then asked
# for 7). Three replicates pin an sd down poorly (its 95 % range is 0.16-1.9 times the true one); 9 replicates run
# either way.
PILOT_SD = 1.37
PLAN = PowerPlan.from_pilot(PILOT_SD, len(PILOT_SEEDS), SESOI, cap=CAP)
R = max(FLOOR, PLAN.replicates)

CORESET, STUDENT_SIDE, PRIVILEGED = "coreset (k-center greedy)", "RAD + student-side correctness", "RAD + teacher confidence (privileged)"
BASELINES = {"vs uniform": "uniform", "vs margin": "margin", "vs entropy": "entropy"}
GATE = f"the mistake-skipping oracle − the baseline in validation accuracy over rounds (lower 95 % end >= {SESOI} pp)"


def _claim(id: str, statement: str, kind: str, test: str, paper_value: str, source: str, gated: bool = True, **fields) -> Declaration:
    gate = {"ceiling": ORACLE, "gate_baseline": fields.pop("gate_baseline", "margin")} if gated else {}
    return Declaration(id=id, statement=statement, kind=kind, formula="reconstructed", test=test, paper_value=paper_value, replicates=R,
                       plan=PLAN if PLAN.replicates == R else None, source=source, **gate, **fields)


DECLARATIONS = Declarations(
    notebook="04_rad",
    claims=(
        _claim("rad-beats-baselines", "With a noisy teacher, RAD beats uniform, margin AND entropy sampling at equal numbers of teacher "
               "queries (test accuracy averaged over the query rounds; each part pooled over the noisy tasks that pass its gate)",
               "paper", "conjunction", "better than active-learning and active-distillation baselines (no number readable)", parts=tuple(BASELINES),
               gate_baseline="the part's baseline (uniform / margin / entropy)",
               source=f"{NOTES} abstract [V] and 'what the notebook must show' (1); baselines [R] (the paper's are not named)"),
        _claim("rad-beats-coreset", "With a noisy teacher, RAD beats the coreset baseline (k-center greedy on the student's features) at "
               "equal numbers of queries (main task)", "paper", "difference", "better than state-of-the-art active learning",
               gate_baseline=CORESET, source=f"{NOTES} abstract [V]; coreset as the standard active-learning baseline [R], as issue 18 asks"),
        _claim("estimated-m-as-good-as-true-m", "RAD with m estimated on V is not worse than RAD with the true number of teacher mistakes "
               "(non-inferiority, RAD − RAD with true m, main task)", "paper", "non_inferiority",
               "m estimated on a validation set of 1,000 (CIFAR, SVHN) / 10,000 (ImageNet)",
               source=f"{NOTES} §3.1 [V] (m estimated on validation; 'parameter-free'); the comparison with the true m is ours [R]"),
        _claim("rad-fewer-teacher-mistakes", "RAD's queried points hold fewer teacher mistakes than margin sampling's (the teacher's error "
               "rate among all queried points, RAD − margin < 0, pooled over the noisy tasks that pass the gate)", "paper", "difference",
               "queries points 'simultaneously informative and correctly labeled by the teacher'", direction=-1,
               source=f"{NOTES} abstract [V]; gated on the accuracy headroom so that CIFAR-10 enters only through it"),
        _claim("rad-equals-margin-clean", "With a clean teacher, RAD does no worse than margin sampling (non-inferiority, RAD − margin)",
               "control", "non_inferiority", "m = 0 reduces the game to top-b margin (exact: unit test)", gated=False,
               source=f"{NOTES} §6 ('near-perfect teacher -> RAD ≈ margin') [R]; the estimated m is not 0 with this teacher"),
        _claim("rad-gain-shrinks-with-clean-teacher", "RAD's gain over margin is larger with the noisy teacher than with the clean one on "
               "the same split (noisy RAD − margin minus clean RAD − margin, Welch)", "control", "trend",
               "the gap is largest for a weak teacher and shrinks as it improves", gated=False,
               source=f"{NOTES} 'what the notebook must show' (2) and §6 [R]"),
        _claim("student-side-correctness-beats-margin", "RAD on expected gains with P(teacher right | student margin), fitted on V, beats "
               "margin sampling (main task)", "control", "difference", "not in the paper (our variant)",
               source=f"{NOTES} §6 pilot [P]: the lesson that the game needs the teacher's correctness"),
        _claim("privileged-confidence-beats-margin", "RAD on expected gains with P(teacher right | the teacher's own margin) beats margin "
               "sampling (main task; privileged: it reads the teacher on the whole pool)", "control", "difference",
               "not in the paper (what knowing the teacher's confidence is worth)", source=f"{NOTES} §6 pilot [P]"),
        _claim("student-beats-teacher", "RAD's final student beats its noisy teacher on test (main task)", "control", "difference",
               "not in the paper", gated=False, source="issue 18: a control in notebooks 02-04"),
    ),
    path=Path(__file__),
)

PAIRS = {  # claim -> (method, baseline, metric) on the main task
    "rad-beats-coreset": ("RAD", CORESET, ACCURACY),
    "estimated-m-as-good-as-true-m": ("RAD", "RAD, true m", ACCURACY),
    "student-side-correctness-beats-margin": (STUDENT_SIDE, "margin", ACCURACY),
    "privileged-confidence-beats-margin": (PRIVILEGED, "margin", ACCURACY),
    "student-beats-teacher": ("RAD", "teacher", "final_test_accuracy"),
}
GATE_BASELINES = {"rad-beats-coreset": CORESET}  # gated claims on margin unless listed here


def pilot_plan(records: pd.DataFrame, task: str) -> PowerPlan:
    """The replicate plan from the pilot's records on ``task``: the sd of the paired RAD − margin differences in mean
    test accuracy over rounds (pp), rounded to 0.01 as declared."""
    estimate = paired_estimates(records, "RAD", "margin", [task], metric=ACCURACY)[task]
    return PowerPlan.from_pilot(float(round(estimate.spread, 2)), estimate.n, SESOI, cap=CAP)


def evidence(records: pd.DataFrame, roles: Mapping[str, str]) -> tuple[dict, dict]:
    """Each claim's evidence and gates from the main run's records; ``roles`` maps each experiment to its setting's role
    ("main", "gated" or "clean control"). Gates are the oracle's gain over the baseline in validation accuracy."""
    main = [t for t, role in roles.items() if role == "main"]
    noisy = [t for t, role in roles.items() if role in ("main", "gated")]
    clean = [t for t, role in roles.items() if role == "clean control"]
    methods = records.groupby("experiment").method.unique().map(set)
    having = lambda tasks, *needed: [t for t in tasks if set(needed) <= methods[t]]  # noqa: E731

    def headroom(baseline: str, tasks: list[str]) -> dict[str, Estimate]:
        return paired_estimates(records, ORACLE, baseline, having(tasks, ORACLE, baseline), metric=VALIDATION)

    out: dict = {claim: paired_estimates(records, a, b, main, metric=metric) for claim, (a, b, metric) in PAIRS.items()}
    out["rad-beats-baselines"] = {part: paired_estimates(records, "RAD", b, having(noisy, "RAD", b), metric=ACCURACY) for part, b in BASELINES.items()}
    out["rad-fewer-teacher-mistakes"] = paired_estimates(records, "RAD", "margin", noisy, metric=MISTAKES)
    out["rad-equals-margin-clean"] = paired_estimates(records, "RAD", "margin", clean, metric=ACCURACY)
    noisy_gain = pooled(paired_estimates(records, "RAD", "margin", main, metric=ACCURACY))
    out["rad-gain-shrinks-with-clean-teacher"] = {"noisy − clean teacher": noisy_gain.minus(pooled(out["rad-equals-margin-clean"]))}
    gates: dict = {"rad-beats-baselines": {part: headroom(b, having(noisy, "RAD", b)) for part, b in BASELINES.items()},
                   "rad-fewer-teacher-mistakes": headroom("margin", noisy)}
    for claim in ("rad-beats-coreset", "estimated-m-as-good-as-true-m", "student-side-correctness-beats-margin", "privileged-confidence-beats-margin"):
        gates[claim] = headroom(GATE_BASELINES.get(claim, "margin"), main)
    return out, gates

