"""Notebook 00's claims, declared before its run: the harness check (a small student alone vs the same student with
vanilla KD, Hinton et al. 2015) and the teachers' lead over their students.

All three are controls: no notes file cites Hinton et al. (2015) with a [V]/[S] tag, and Hinton's MNIST result
(146 -> 74 test errors) distils on the full training set, not on the few labelled examples tested here. Replicates
come from the power rule on a pilot of 5 replicates (seeds 1000-1004, never reused; :func:`pilot_plans` recomputes
the plans from them, and the notebook checks that they match the declarations), capped by the budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from kdlib.experiments.kd_sanity import PILOT_SEEDS, TASKS
from kdlib.results import Declaration, Declarations, Deterministic, PowerPlan, paired_estimates

KD, ALONE = "student + KD", "student alone"
SESOI = 0.5  # pp: the project rule without a paper number for this setting
CAP = 10  # replicates per task the budget allows (about 1-2 min of training per vision replicate on 2 shared cores)
HINTON = "KD helps a small student (Hinton et al. 2015, MNIST: 146 -> 74 test errors)"

# From the pilot (5 replicates per task, seeds 1000-1004): the sd of the paired KD - alone differences, in pp.
PILOT_SD = {"vision": 1.16, "text": 1.39}  # pilot means: vision KD 82.76 vs alone 81.05, text 68.70 vs 68.84 (test accuracy %)
PLANS = {key: PowerPlan.from_pilot(sd, len(PILOT_SEEDS), SESOI, cap=CAP) for key, sd in PILOT_SD.items()}

DECLARATIONS = Declarations(
    notebook="00_data_and_teachers",
    claims=(
        *(Declaration(
            id=f"kd-helps-{key}",
            statement=f"Vanilla KD (T = 4, alpha = 0.9) beats the same student trained alone on few labels ({task}; paired replicates, "
                      "each redrawing the student's examples, initialisation and batch order)",
            kind="control", formula="verified", test="difference", replicates=PLANS[key].replicates,
            paper_value=HINTON, sesoi=SESOI, sesoi_reason="the project rule without a paper number for this setting", plan=PLANS[key],
            source="notebook 00, section 3; a control: no notes file cites Hinton et al. with a [V]/[S] tag",
        ) for key, task in TASKS.items()),
        Declaration(
            id="teachers-beat-students",
            statement="Every teacher beats its distilled student on test accuracy (there is something to transfer)",
            kind="control", formula="n/a", test="deterministic", replicates=1, paper_value="teacher > student",
            source="notebook 00, section 4: a check of the harness (teacher test accuracy vs the mean over replicates of the KD student)",
        ),
    ),
    path=Path(__file__),
)


def pilot_plans(records: pd.DataFrame) -> dict[str, PowerPlan]:
    """The replicate plan of each KD claim from the pilot's records (sd of the paired differences, in pp)."""
    estimates = paired_estimates(records, KD, ALONE, list(TASKS.values()))
    return {key: PowerPlan.from_pilot(float(round(estimates[task].spread, 2)), estimates[task].n, SESOI, cap=CAP) for key, task in TASKS.items()}


def evidence(records: pd.DataFrame, teacher_accuracy: Mapping[str, float]) -> dict:
    """Each claim's evidence from the main run's records and the teachers' test accuracy (by task key)."""
    out = {f"kd-helps-{key}": {task: paired_estimates(records, KD, ALONE, [task])[task]} for key, task in TASKS.items()}
    test = records[(records.metric == "test_accuracy") & (records.method == KD)]
    pairs = [(task, teacher_accuracy[key], test[test.experiment == task].value.mean()) for key, task in TASKS.items()]
    out["teachers-beat-students"] = Deterministic(all(t > s for _, t, s in pairs),
                                                  ", ".join(f"{task}: teacher {100 * t:.2f} vs student {100 * s:.2f}" for task, t, s in pairs))
    return out
