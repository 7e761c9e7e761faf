"""Notebook 08's claims: noisy and cautious pseudo-labelling on graphs (Wang et al., NeurIPS 2023), declared before the run.

Notes: ../shared/papers/08_noisy_pseudo_labeling_graphs.md. Only the abstract and the first paragraphs of the
introduction were readable ([V]); the method and its protocol come from the official code ([V]), the theorems and
tables were not retrieved ([NF]), so no claim has a paper number and every SESOI is the project's 0.5 pp.

Paper claims (abstract [V]): wrong pseudo-labels hurt, more as their share rises (the toy of ``main_random.py``);
confident multi-view selection gives more accurate pseudo-labels than threshold or random selection; CPL beats the
base GNN and naive self-training (graded on the validation-selected round, which the paper does not use).
Controls: random nodes with their true labels against CPL's confident ones (the informativeness confound, the
notes' [R] expectation and pilot [P]), and CPL against the base GNN under the official code's protocol (the round
of best test accuracy).

Every claim pools Cora and CiteSeer with equal weights; replicates are paired (one base GNN and one snapshot per
replicate, shared by every method). The replicates come from the power rule on a pilot (3 replicates on Cora,
seeds 1000-1002, 2 rounds: a cheaper regime than the main run's 3 rounds), capped by the 20-minute budget.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdlib.experiments.pseudo_label import BASE, CPL, FINAL, NOISE_RATES, PILOT_SEEDS, PROTOCOLS, RANDOM_PL, RANDOM_TRUE, SELF_TRAINING, noisy
from kdlib.results import Declaration, Declarations, Estimate, PowerPlan, paired_estimates

NOTES = "notes 08_noisy_pseudo_labeling_graphs.md"
SESOI = 0.5  # pp: the project rule without a paper number
CAP = 5  # replicates per task the 20-minute budget allows (one replicate of both datasets: about 2.5 minutes of training)
TASKS = 2  # Cora and CiteSeer, pooled with equal weights
VALIDATION, OFFICIAL = PROTOCOLS  # "validation-selected round", "best round by test (official)"
WORST = noisy(NOISE_RATES[-1])

# claim id -> parts: (part label, method a, method b, metric, setting); the estimate is a - b in pp, paired by replicate
CONTRASTS: dict[str, tuple[tuple[str, str, str, str, str], ...]] = {
    "noise-hurts-more-as-r-rises": (("", RANDOM_TRUE, WORST, "test_accuracy", FINAL),),
    "multiview-pl-more-accurate": (("vs self-training", CPL, SELF_TRAINING, "pl_accuracy", FINAL),
                                   ("vs random pseudo-labels", CPL, RANDOM_PL, "pl_accuracy", FINAL)),
    "cpl-beats-base-and-self-training": (("vs base GNN", CPL, BASE, "test_accuracy", VALIDATION),
                                         ("vs self-training", CPL, SELF_TRAINING, "test_accuracy", VALIDATION)),
    "random-true-labels-beat-cpl": (("", RANDOM_TRUE, CPL, "test_accuracy", VALIDATION),),
    "cpl-beats-base-official-protocol": (("", CPL, BASE, "test_accuracy", OFFICIAL),),
}

# From the pilot (3 replicates on Cora, seeds 1000-1002, 2 rounds; notebook 08, cell "pilot"): per claim, the largest
# sd over its parts of the paired differences, in pp.
PILOT_SD = {
    "noise-hurts-more-as-r-rises": 0.93,
    "multiview-pl-more-accurate": 1.44,
    "cpl-beats-base-and-self-training": 0.68,
    "random-true-labels-beat-cpl": 0.33,
    "cpl-beats-base-official-protocol": 0.78,
}
PLANS = {claim: PowerPlan.from_pilot(sd, len(PILOT_SEEDS), SESOI, TASKS, cap=CAP) for claim, sd in PILOT_SD.items() if sd is not None}


def _declaration(claim: str, **fields) -> Declaration:
    parts = tuple(label for label, *_ in CONTRASTS[claim] if label)
    return Declaration(id=claim, replicates=PLANS[claim].replicates if claim in PLANS else CAP, plan=PLANS.get(claim), parts=parts,
                       test=fields.pop("test", "conjunction" if parts else "difference"), **fields)


DECLARATIONS = Declarations(
    notebook="08_noisy_pseudo_labeling_graphs",
    claims=(
        _declaration(
            "noise-hurts-more-as-r-rises", test="trend", kind="paper", formula="verified",
            statement=f"Adding random nodes with a share r of wrong labels hurts more as r rises: test accuracy after the last round, "
                      f"r = 0 minus r = {NOISE_RATES[-1]:g} (the same nodes, only their labels differ)",
            paper_value="wrong pseudo-labels can be 'fatal' on graphs; the toy (main_random.py) plots accuracy falling with r (no number)",
            source=f"{NOTES} §1 abstract / intro [V], §4 the toy [V code]",
        ),
        _declaration(
            "multiview-pl-more-accurate", kind="paper", formula="verified",
            statement="CPL's confident multi-view selection gives more accurate pseudo-labels than naive self-training (confidence > 0.65) "
                      "and than random nodes with predicted labels (pseudo-label accuracy after the last round)",
            paper_value="the PL error is bounded by the confidence threshold and multi-view consistency (no number)",
            source=f"{NOTES} §1 abstract [V]; selection rule from main_node.py / utils.multiview_pred [V]",
        ),
        _declaration(
            "cpl-beats-base-and-self-training", kind="paper", formula="verified",
            statement="CPL (multi-view) beats the base GNN and naive self-training on test accuracy at the validation-selected round",
            paper_value="CPL improves the base models and beats other PL strategies on node classification (no number)",
            source=f"{NOTES} §1 abstract [V], §5 [NF]; the validation-selected round is ours (the official code takes the best test round)",
        ),
        _declaration(
            "random-true-labels-beat-cpl", kind="control", formula="n/a",
            statement="Random nodes with their true labels beat CPL's confident pseudo-labelled nodes (validation-selected round): "
                      "the most confident nodes are nearly all right but carry little the model does not know",
            paper_value="(not in the paper) informativeness confound; pilot: random true labels +5 pp over base, CPL -3 pp",
            source=f"{NOTES} 'What the notebook must show' claim 4 [R], §6 pilot [P]",
        ),
        _declaration(
            "cpl-beats-base-official-protocol", kind="control", formula="n/a",
            statement="Under the official code's protocol (the round of best test accuracy) CPL beats the base GNN",
            paper_value="the official code reports the max over rounds of test accuracy",
            source=f"{NOTES} §3.1 step 3 [V code]: a check of how much the test-selected round adds",
        ),
    ),
    path=Path(__file__),
)


def _estimates(records: pd.DataFrame, tasks: list[str], claim: str) -> dict:
    """A claim's evidence: ``{task: Estimate}`` or, for a conjunction, ``{part: {task: Estimate}}``."""
    parts = {label: paired_estimates(records[records.setting == setting], a, b, tasks, metric=metric)
             for label, a, b, metric, setting in CONTRASTS[claim]}
    return parts if DECLARATIONS[claim].test == "conjunction" else parts[""]


def evidence(records: pd.DataFrame, tasks: list[str]) -> dict:
    """Each claim's evidence from the records of the main run (``tasks``: the experiments to pool, e.g. Cora, CiteSeer)."""
    return {claim.id: _estimates(records, tasks, claim.id) for claim in DECLARATIONS.claims}


def pilot_spread(records: pd.DataFrame, tasks: list[str]) -> dict[str, tuple[float, int]]:
    """Per claim, the largest spread over its parts and tasks of the paired differences (pp) and its replicates."""
    spreads = {}
    for claim, given in evidence(records, tasks).items():
        estimates: list[Estimate] = [e for part in (given.values() if DECLARATIONS[claim].test == "conjunction" else [given]) for e in part.values()]
        widest = max(estimates, key=lambda e: e.spread)
        spreads[claim] = (round(float(widest.spread), 2), widest.n)
    return spreads


def pilot_plans(records: pd.DataFrame, tasks: list[str]) -> dict[str, PowerPlan]:
    """The replicate plan of every claim from the pilot's records."""
    return {claim: PowerPlan.from_pilot(sd, n, SESOI, TASKS, cap=CAP) for claim, (sd, n) in pilot_spread(records, tasks).items()}
