"""Graded verdicts of records committed before their claims were declared (notebooks 00-06), marked provisional.

``python -m kdlib.results provisional`` grades every results file that has not been re-run on declared claims: it
recomputes each claim's evidence from the file's records (``provisional_evidence`` of the notebook's
:mod:`kdlib.claims` module; no training), writes the verdicts into the file's ``claims`` with
``declarations_commit`` (records, extra and provenance untouched), keeps a copy in
``results/provisional/NN_name.json`` so that the previous regime stays readable once the notebook is re-run, and
renders ``figures/NN_forest.png``. Files whose claims are graded and not provisional are left alone, and so are the
notebooks whose claims module has moved on to the declarations of their re-run (it no longer has
``provisional_evidence``): their previous regime stays frozen in ``results/provisional/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt

from kdlib.claims import registry
from kdlib.plots import forest, set_theme
from kdlib.results.grading import Verdict, grade
from kdlib.results.provenance import records_commit
from kdlib.results.records import with_verdicts, write_json
from kdlib.results.report import is_graded

REGIME = "provisional: declared after the data (issue 14), graded from the committed records; gates from the same replicates"


def grade_results(results: Mapping) -> list[Verdict]:
    """The provisional verdicts of a loaded results file, from its records and its notebook's declarations."""
    module = registry(results["notebook"])
    evidence, gates = module.provisional_evidence(results)
    return grade(module.DECLARATIONS, evidence, gates, provisional=True)


def rerun_on_declared_claims(results: Mapping) -> bool:
    """Whether a results file's claims are graded verdicts declared before its run (nothing provisional to redo)."""
    return bool(results["claims"]) and all(is_graded(c) and not c["provisional"] for c in results["claims"])


def write_provisional(results_dir: Path, output_dir: Path | None = None, figures_dir: Path | None = None) -> dict[str, list[Verdict]]:
    """Grade every results file of ``results_dir`` not yet re-run on declared claims.

    Args:
        results_dir: where the ``NN_name.json`` files are read.
        output_dir: where the graded files and ``provisional/NN_name.json`` are written (default: ``results_dir``).
        figures_dir: where ``NN_forest.png`` is rendered (default: none rendered).

    Returns:
        The verdicts per notebook graded.
    """
    output_dir = output_dir or results_dir
    (output_dir / "provisional").mkdir(parents=True, exist_ok=True)
    graded = {}
    for path in sorted(results_dir.glob("*.json")):
        results = json.loads(path.read_text())
        if rerun_on_declared_claims(results) or not hasattr(registry(results["notebook"]), "provisional_evidence"):
            continue
        verdicts = grade_results(results)
        updated = with_verdicts(results, verdicts)
        copy = {"notebook": results["notebook"], "regime": REGIME, "source_results_commit": records_commit(path),
                "run_commit": results["provenance"]["git_commit"], "declarations_commit": updated["declarations_commit"],
                "claims": updated["claims"]}
        write_json(output_dir / path.name, updated)
        write_json(output_dir / "provisional" / path.name, copy)
        if figures_dir is not None:
            set_theme()
            figure = forest(verdicts, controls=True)
            figure.savefig(figures_dir / f"{results['notebook'].split('_', 1)[0]}_forest.png")
            plt.close(figure)
        graded[results["notebook"]] = verdicts
    return graded
