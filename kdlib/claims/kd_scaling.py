"""Notebook 05's claims, declared before its re-run: the small-data pitfall of Hao et al. (2023). DIST and DKD beat
vanilla KD in small-scale evaluations, and their gap shrinks as the data and the recipe grow.

Notes: ../shared/papers/05_vanilla_kd_scaling.md. The three objectives follow the official repository ([V]); the
paper's numbers are read off its Fig. 1 ([V]). Our data axis (10 % -> 100 % of a 500-image Fashion-MNIST pool) lies
below the paper's smallest point (CIFAR-100), so the size check of the data trend compares against the paper's whole
CIFAR-100 -> ImageNet-1K shrink; the ImageNet-1K end and the paper's length axis (300 -> 600 epochs at ImageNet
scale) are declared out of scope. Two controls check the regime the paper claims presuppose: the students are on a
plateau (at 100 % data, a CE-only student's accuracy changes by less than the SESOI between the grid's schedule and
the check's second one: half of it without augmentation, double it under the strong recipe) and the strong recipe
does not hurt the CE-only student at 100 % data.

Replicates come from the power rule on a pilot of 3 replicates (seeds 1000-1002, never reused; the grid's corners and
the schedule check, :func:`kdlib.experiments.kd_scaling.pilot_cells`); :func:`pilot_plans` recomputes the plans from
its records and the notebook checks that they match these declarations.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from kdlib.experiments.kd_scaling import REFERENCE, SETTINGS, VARIANTS, point_name, schedule_name, settings
from kdlib.results import Declaration, Declarations, Estimate, PowerPlan, paired_estimates
from kdlib.results.declarations import smallest_effect_of_interest

NOTES = "notes 05_vanilla_kd_scaling.md"
PAPER = {  # variant -> (CIFAR-100 gap, ImageNet-1K full gap) to vanilla KD in pp, Fig. 1 [V]
    "DIST": (2.17, -0.46),
    "DKD": (0.76, 0.01),
}
FULL = SETTINGS["full"]
DATASET = FULL["datasets"][0]
SMALL, LARGE = FULL["fractions"][0], FULL["fractions"][-1]
WEAK, STRONG = FULL["recipes"][0], FULL["recipes"][-1]
LONGEST = FULL["epochs"][-1]
PLATEAU_RECIPES = tuple(recipe for recipe, _ in FULL["schedule_check"])
SCHEDULE_PAIRS = settings("full", 1).schedule_pairs()  # recipe -> (shorter, longer) epochs
# Replicates per task the budget allows: a replicate of the 3 x 3 grid (9 cells of 300 / 834 / 2,048 steps of a
# 4-student stack, 40-45 ms a step at 2 threads from the pilot's step costs) plus its schedule check costs about 8
# minutes, and the cold full profile (teacher, probe and pilot included) must fit in 45 minutes.
CAP = 5

# From the pilot (seeds 1000-1002, its own cheaper regime: a 1,000-image pool, 40 / 16 epochs, schedule check 8 vs 16
# epochs without augmentation and 16 vs 32 under the strong recipe; see SETTINGS["full"]["pilot"]): per claim, the spread
# (sd, pp) of the per-replicate estimate pooled over the pilot's tasks (sqrt of the mean variance) and its n (sum of
# n - 1 over tasks, + 1), as in the grading's replicates_to_settle. Re-measured before this run on the machine that runs
# it (a CPU with other float kernels than the one of the first declarations gives other spreads, e.g. DIST - KD 1.09
# here against 1.02 there; every plan is the cap either way). ce-plateau-strong was re-declared after the first full
# run, whose check (128 vs 256 epochs) was still gaining (-2.00 pp): it now compares 256 with 512, and its pilot mirrors
# that (the grid's schedule against double it); benchmarks/kd_scaling_plateau.py on the main regime's pilot seeds
# spread 0.25 pp, which gives the same plan. Pilot means (pp), for the record: DIST - KD at 10 % none +0.83, DKD - KD
# +1.39; the data trend DIST -0.05 (none) / +3.77 (strong), DKD +1.25 / -6.44; the recipe trend DIST -4.32 (10 %) /
# -0.50 (100 %), DKD +7.55 / -0.14; CE only strong - none at 100 % -5.13; 8 - 16 epochs -3.82 (none), 16 - 32 epochs
# -3.27 (strong). The pilot's regime is not on a plateau, which is why the main run trains longer (SETTINGS).
PILOT = {
    "dist-beats-kd-small-weak": (1.09, 3),
    "dkd-beats-kd-small-weak": (0.86, 3),
    "dist-gap-shrinks-with-data": (1.83, 5),
    "dkd-gap-shrinks-with-data": (3.6, 5),
    "dist-gap-shrinks-with-recipe": (2.24, 5),
    "dkd-gap-shrinks-with-recipe": (3.27, 5),
    "strong-recipe-does-not-hurt-ce": (0.35, 3),
    "ce-plateau-none": (0.37, 3),
    "ce-plateau-strong": (0.68, 3),
}


def _tasks(claim_id: str) -> int:
    """Tasks of a claim in the full grid (trends pool over the other axis)."""
    if "-with-data" in claim_id:
        return len(FULL["recipes"])
    if "-with-recipe" in claim_id:
        return len(FULL["fractions"])
    return 1


def _sesoi(claim_id: str) -> float:
    variant = claim_id.split("-")[0].upper()
    if claim_id.endswith("-small-weak"):
        return smallest_effect_of_interest(PAPER[variant][0])
    if claim_id.endswith("-with-data"):
        return smallest_effect_of_interest(PAPER[variant][0] - PAPER[variant][1])
    return smallest_effect_of_interest(None)


def plan(claim_id: str, sd: float, n: int) -> PowerPlan:
    """The replicate plan of a claim from a pilot spread ``sd`` (pp) on ``n`` replicates."""
    return PowerPlan.from_pilot(sd, n, _sesoi(claim_id), tasks=_tasks(claim_id), cap=CAP)


PLANS = {claim_id: plan(claim_id, sd, n) for claim_id, (sd, n) in PILOT.items()}


def _paper_claims(variant: str) -> tuple[Declaration, ...]:
    small, large = PAPER[variant]
    key = variant.lower()
    shrink = f"{small:+.2f} → {large:+.2f} pp (CIFAR-100 → ImageNet-1K full)"
    return (
        Declaration(
            id=f"{key}-beats-kd-small-weak",
            statement=f"{variant} beats vanilla KD with small data and no augmentation ({100 * SMALL:g} % of the pool, {DATASET})",
            kind="paper", formula="verified", test="difference", replicates=PLANS[f"{key}-beats-kd-small-weak"].replicates,
            paper_value=f"{small:+.2f} pp on CIFAR-100", paper_effect=small, plan=PLANS[f"{key}-beats-kd-small-weak"],
            source=f"{NOTES} §5 Fig. 1 [V]",
        ),
        Declaration(
            id=f"{key}-gap-shrinks-with-data",
            statement=f"{variant}'s gap to vanilla KD shrinks as the data grow: gap({100 * SMALL:g} %) − gap({100 * LARGE:g} %), "
                      "paired replicates, equal-weight pool over the recipes",
            kind="paper", formula="verified", test="trend", replicates=PLANS[f"{key}-gap-shrinks-with-data"].replicates,
            paper_value=shrink, paper_effect=round(small - large, 2), plan=PLANS[f"{key}-gap-shrinks-with-data"],
            source=f"{NOTES} §3 [V abstract, Fig. 1]: with more data the gap disappears; effect = the Fig. 1 shrink",
        ),
        Declaration(
            id=f"{key}-gap-shrinks-with-recipe",
            statement=f"{variant}'s gap to vanilla KD shrinks as the recipe strengthens (vanilla KD gains more from it): "
                      f"gap({WEAK}) − gap({STRONG}), paired replicates, equal-weight pool over the fractions",
            kind="paper", formula="verified", test="trend", replicates=PLANS[f"{key}-gap-shrinks-with-recipe"].replicates,
            paper_value="stronger augmentation helps vanilla KD more than the variants (no number read)",
            plan=PLANS[f"{key}-gap-shrinks-with-recipe"],
            source=f"{NOTES} §3 [V abstract, Fig. 1]; §5 'Table 1a/1b' [S]; Fig. 1 gives numbers for data scale only",
        ),
    )


def _plateau(recipe: str) -> Declaration:
    claim_id = f"ce-plateau-{recipe}"
    shorter, longer = SCHEDULE_PAIRS[recipe]
    return Declaration(
        id=claim_id,
        statement=f"The students train to a plateau: at 100 % data ({recipe}), a CE-only student trained {shorter} epochs is within the "
                  f"SESOI of one trained {longer} (acc({shorter} ep) − acc({longer} ep) > −SESOI; the grid trains {LONGEST})",
        kind="control", formula="n/a", test="non_inferiority", replicates=PLANS[claim_id].replicates, plan=PLANS[claim_id],
        paper_value="the paper's claims presuppose converged students (issue 19: the previous regime's were still rising)",
        source="issue 19 'Deliver': students trained to a plateau",
    )


DECLARATIONS = Declarations(
    notebook="05_vanilla_kd_scaling",
    claims=(
        *_paper_claims("DIST"),
        *_paper_claims("DKD"),
        Declaration(
            id="gap-shrinks-with-length",
            statement="The variants' gap to vanilla KD shrinks as training grows longer (A2 300 epochs → A1 600 epochs)",
            kind="paper", formula="verified", test="trend", replicates=1, paper_value="stronger recipes with longer training favour vanilla KD",
            out_of_scope="a length axis at ImageNet-1K scale (300 → 600+ epochs of a ResNet-50); here every run is trained to a plateau "
                         "(checked on CE only), where more epochs no longer change the students",
            source=f"{NOTES} §3 [V abstract]",
        ),
        Declaration(
            id="gap-vanishes-at-imagenet-scale",
            statement="At ImageNet-1K scale vanilla KD is at least as good as DIST and DKD (the small-data pitfall's large end)",
            kind="paper", formula="verified", test="non_inferiority", replicates=1,
            paper_value="DIST −0.46, DKD +0.01 pp on ImageNet-1K full",
            out_of_scope="needs ImageNet-1K scale (1.28M images, a ResNet-50 student, a BEiTv2-B teacher, 300-600 epochs)",
            source=f"{NOTES} §5 Fig. 1 [V]",
        ),
        Declaration(
            id="strong-recipe-does-not-hurt-ce",
            statement=f"The student is large enough for the strong recipe: at 100 % data after the longest schedule ({LONGEST} epochs), "
                      f"CE only with {STRONG} is not worse than with {WEAK} (acc({STRONG}) − acc({WEAK}) > −SESOI)",
            kind="control", formula="n/a", test="non_inferiority", replicates=PLANS["strong-recipe-does-not-hurt-ce"].replicates,
            plan=PLANS["strong-recipe-does-not-hurt-ce"], paper_value="strong recipes help (the paper's premise)",
            source="issue 19 'Deliver': the recipe check",
        ),
        *(_plateau(recipe) for recipe in PLATEAU_RECIPES),
    ),
    path=Path(__file__),
)


def _accuracy(records: pd.DataFrame, experiment: str, method: str) -> pd.Series:
    """Test accuracy (pp) of ``method`` per seed at one experiment of the records."""
    part = records[(records.experiment == experiment) & (records.method == method) & (records.metric == "test_accuracy")]
    if part.empty:
        raise ValueError(f"no test accuracy of {method!r} at {experiment!r}")
    return 100 * part.set_index("seed")["value"]


def _by_seed(records: pd.DataFrame, experiment: str, a: str, b: str) -> pd.Series:
    """Per seed, ``a`` minus ``b`` in pp at one experiment of the records."""
    return _accuracy(records, experiment, a) - _accuracy(records, experiment, b)


def shrinkage(records: pd.DataFrame, variant: str, small: str, large: str) -> Estimate:
    """gap(small) − gap(large) in pp (gap = ``variant`` − vanilla KD), paired over the replicates both experiments have."""
    difference = (_by_seed(records, small, variant, REFERENCE) - _by_seed(records, large, variant, REFERENCE)).dropna()
    return Estimate.paired(difference.to_numpy())


def evidence(records: pd.DataFrame, fractions: Sequence[float], recipes: Sequence[str], schedule_pairs: dict[str, tuple[int, int]] | None = None,
             dataset: str = DATASET) -> dict:
    """Each graded claim's evidence from the records of a grid over ``fractions`` x ``recipes`` and of the schedule
    check (CE only at 100 % data; ``schedule_pairs``: recipe -> (shorter, longer) epochs, default the full profile's)."""
    small, large, weak, strong = fractions[0], fractions[-1], recipes[0], recipes[-1]
    out: dict = {}
    for variant in VARIANTS:
        key = variant.lower()
        out[f"{key}-beats-kd-small-weak"] = paired_estimates(records, variant, REFERENCE, [point_name(dataset, small, weak)])
        out[f"{key}-gap-shrinks-with-data"] = {f"{dataset} {r}": shrinkage(records, variant, point_name(dataset, small, r), point_name(dataset, large, r))
                                               for r in recipes}
        out[f"{key}-gap-shrinks-with-recipe"] = {f"{dataset} {100 * f:g}%": shrinkage(records, variant, point_name(dataset, f, weak), point_name(dataset, f, strong))
                                                 for f in fractions}
    recipe_gain = _accuracy(records, point_name(dataset, large, strong), "CE only") - _accuracy(records, point_name(dataset, large, weak), "CE only")
    out["strong-recipe-does-not-hurt-ce"] = {f"{dataset} {100 * large:g}%": Estimate.paired(recipe_gain.dropna().to_numpy())}
    for recipe, (shorter, longer) in (SCHEDULE_PAIRS if schedule_pairs is None else schedule_pairs).items():
        out[f"ce-plateau-{recipe}"] = paired_estimates(records, f"{shorter} epochs", f"{longer} epochs", [schedule_name(dataset, recipe)])
    return out


def pooled_spread(estimates: dict[str, Estimate]) -> tuple[float, int]:
    """The per-replicate spread pooled over tasks (sqrt of the mean variance, pp, rounded to 0.01) and its n."""
    spread = math.sqrt(np.mean([e.spread**2 for e in estimates.values()]))
    return round(float(spread), 2), sum(e.n - 1 for e in estimates.values()) + 1


def pilot_plans(records: pd.DataFrame, fractions: Sequence[float], recipes: Sequence[str], schedule_pairs: dict[str, tuple[int, int]]) -> dict[str, PowerPlan]:
    """The replicate plan of every graded claim from the pilot's records (its corners ``fractions`` x ``recipes``, its
    schedule check: recipe -> (shorter, longer) epochs)."""
    return {claim_id: plan(claim_id, *pooled_spread(estimates)) for claim_id, estimates in evidence(records, fractions, recipes, schedule_pairs).items()}
