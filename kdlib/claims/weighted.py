"""Notebook 03's claims: weighted distillation (Iliopoulos et al. 2022) against unweighted distillation.

Notes: ../shared/papers/03_weighted_distillation.md. The weighting formula is not verified (two candidates are [R];
the claims test R2), so every claim is graded on a reconstruction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from kdlib.experiments import unlabelled
from kdlib.experiments.weighted import ORACLE, UNWEIGHTED, WEIGHTED
from kdlib.results import Declaration, Declarations, headroom_comparison, paired_estimates, records_frame

NOTES = "notes 03_weighted_distillation.md"
CEILING = "oracle weights"  # 1 where the teacher is right, else 0
LABELS = ("hard", "soft")

DECLARATIONS = Declarations(
    notebook="03_weighted_distillation",
    claims=(
        Declaration(
            id="weighted-beats-vanilla-noisy",
            statement="Weighted (R2) soft distillation beats unweighted soft distillation with the noisiest teacher of each dataset "
                      "(equal-weight pool over datasets)",
            kind="paper", formula="reconstructed", test="difference", replicates=3,
            paper_value="'significant improvements' over unweighted distillation (no number readable)",
            ceiling=f"{CEILING}, soft", gate_baseline="soft distillation",
            source=f"{NOTES} abstract [V]",
        ),
        Declaration(
            id="hard-and-soft",
            statement="Weighting (R2) beats unweighted distillation with hard AND with soft labels (each pooled over every setting)",
            kind="paper", formula="reconstructed", test="conjunction", parts=LABELS, replicates=3,
            paper_value="applies to both hard and soft distillation",
            ceiling=f"{CEILING} (the part's labels)", gate_baseline="unweighted distillation (the part's labels)",
            source=f"{NOTES} abstract [V] ('applies to both hard and soft distillation'; 'significant improvements')",
        ),
        Declaration(
            id="approaches-oracle",
            statement="Weighted soft distillation recovers more than half of the oracle weights' gain over soft distillation "
                      "(weighted − the halfway point, equal-weight pool over the gated settings)",
            kind="control", formula="reconstructed", test="difference", replicates=3,
            paper_value="implied: the weights approximate 'is the teacher right'",
            ceiling=f"{CEILING}, soft", gate_baseline="soft distillation",
            source=f"{NOTES} claim 4 names oracle weights as the bound; 'more than half of it' is our own measure [R]",
        ),
    ),
    path=Path(__file__),
)


def provisional_evidence(results: Mapping) -> tuple[dict, dict]:
    """The evidence of notebook 03's committed records, every claim gated on the oracle weights' gain over
    unweighted distillation in validation accuracy (with the same labels)."""
    records = records_frame(results)
    noisiest, every = unlabelled.experiments(results["profile"], "noisiest"), unlabelled.experiments(results["profile"])

    def gain(labels: str, tasks: list[str]) -> dict:
        return paired_estimates(records, WEIGHTED[labels], UNWEIGHTED[labels], tasks)

    def ceiling(labels: str, tasks: list[str]) -> dict:
        return paired_estimates(records, ORACLE[labels], UNWEIGHTED[labels], tasks, metric="val_accuracy")

    halfway = {task: headroom_comparison(records, WEIGHTED["soft"], UNWEIGHTED["soft"], ORACLE["soft"], [task]).estimate() for task in every}
    evidence = {
        "weighted-beats-vanilla-noisy": gain("soft", noisiest),
        "hard-and-soft": {labels: gain(labels, every) for labels in LABELS},
        "approaches-oracle": halfway,
    }
    gates = {
        "weighted-beats-vanilla-noisy": ceiling("soft", noisiest),
        "hard-and-soft": {labels: ceiling(labels, every) for labels in LABELS},
        "approaches-oracle": ceiling("soft", every),
    }
    return evidence, gates
