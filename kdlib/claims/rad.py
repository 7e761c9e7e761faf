"""Notebook 04's claims: RAD (Baykal et al. 2023) against uniform and margin sampling at equal query budgets.

Notes: ../shared/papers/04_robust_active_distillation.md. The game's payoff and solution are not verified ([R]).
Notebook 04 records no validation accuracy, so the claim whose ceiling is the mistake-skipping oracle is not gated
in the provisional grading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from kdlib.results import Declaration, Declarations, paired_estimates, records_frame

NOTES = "notes 04_robust_active_distillation.md"
ACCURACY = "mean_test_accuracy"  # test accuracy averaged over the 10 query rounds
BASELINES = {"vs uniform": "uniform", "vs margin": "margin"}

DECLARATIONS = Declarations(
    notebook="04_rad",
    claims=(
        Declaration(
            id="rad-beats-uniform-and-margin",
            statement="RAD beats uniform AND margin sampling at equal query budget with a noisy teacher (mean test accuracy over "
                      "rounds, each part pooled over the noisy-teacher tasks)",
            kind="paper", formula="reconstructed", test="conjunction", parts=tuple(BASELINES), replicates=3,
            paper_value="better than active-learning and active-distillation baselines (no number readable)",
            ceiling="oracle (skip teacher mistakes)", gate_baseline="the part's baseline (uniform / margin)",
            source=f"{NOTES} abstract [V]; the notebook records no validation accuracy, so the provisional grading is not gated",
        ),
        Declaration(
            id="rad-equals-margin-clean",
            statement="With a clean teacher RAD does no worse than margin sampling (non-inferiority at the SESOI; RAD − margin, "
                      "mean test accuracy over rounds)",
            kind="control", formula="reconstructed", test="non_inferiority", replicates=3,
            paper_value="m = 0 reduces the game to top-b margin (exact: unit test)",
            source=f"{NOTES} §6 ('near-perfect teacher -> RAD ≈ margin') [R]: a check the paper never made. The notebook tested "
                   "equivalence within ±0.5 pp; with no two-sided equivalence test here, it is graded as non-inferiority "
                   "(the hedge costs nothing when there is nothing to hedge against)",
        ),
        Declaration(
            id="rad-fewer-teacher-mistakes",
            statement="RAD's queried points hold fewer teacher mistakes than margin sampling's (teacher error rate among the "
                      "queries, RAD − margin < 0, pooled over the noisy-teacher tasks)",
            kind="paper", formula="reconstructed", test="difference", direction=-1, replicates=3,
            paper_value="queries points 'correctly labeled by the teacher'",
            source=f"{NOTES} abstract [V]: points 'simultaneously informative and correctly labeled by the teacher'",
        ),
    ),
    path=Path(__file__),
)


def provisional_evidence(results: Mapping) -> tuple[dict, dict]:
    """The evidence of notebook 04's committed records (tasks split by the teacher kind in ``extra["settings"]``)."""
    records = records_frame(results)
    kinds = dict(zip(dict.fromkeys(records.experiment), (teacher for _, _, teacher in results["extra"]["settings"])))
    noisy, clean = ([t for t, kind in kinds.items() if kind == wanted] for wanted in ("noisy", "clean"))
    evidence = {
        "rad-beats-uniform-and-margin": {part: paired_estimates(records, "RAD", b, noisy, metric=ACCURACY) for part, b in BASELINES.items()},
        "rad-equals-margin-clean": paired_estimates(records, "RAD", "margin", clean, metric=ACCURACY),
        "rad-fewer-teacher-mistakes": paired_estimates(records, "RAD", "margin", noisy, metric="teacher_error_queried"),
    }
    return evidence, {}
