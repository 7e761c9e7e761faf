"""The provisional verdicts of the committed records of notebooks 00-06, checked against numbers computed by hand
from the records (the records committed before claims were declared; a re-run notebook changes them)."""

import json
import re

import pytest

from kdlib.paths import repo_root
from kdlib.results import readme_table
from kdlib.results.provisional import write_provisional

RESULTS = repo_root() / "results"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The provisional verdicts of every results file not yet re-run on declared claims (a re-run notebook's previous
    regime stays frozen in results/provisional/ and is no longer regraded)."""
    out = tmp_path_factory.mktemp("results")
    figures = tmp_path_factory.mktemp("figures")
    verdicts = write_provisional(RESULTS, out, figures)
    return out, figures, {nb: {v.declaration.id: v for v in vs} for nb, vs in verdicts.items()}


def test_gates_and_verdicts_of_other_notebooks(graded):
    nb = graded[2]
    if "02_slam" in nb:
        slam = nb["02_slam"]["slam-beats-vanilla-noisy"]  # CIFAR-10: even oracle alpha does not beat soft distillation
        assert slam.gated_out == ("cifar10 |L|=1000",) and [t.label for t in slam.tasks] == ["fashion_mnist |L|=100", "sst2 |L|=30"]
        assert slam.verdict == "inconclusive" and "same replicates (provisional)" in slam.gate
    if "04_rad" in nb:
        assert nb["04_rad"]["rad-beats-uniform-and-margin"].gate.startswith("NOT GATED")  # notebook 04 records no validation accuracy
    frozen = {p.stem: json.loads(p.read_text()) for p in (RESULTS / "provisional").glob("*.json")}
    assert set(frozen) == {p.stem for p in RESULTS.glob("0[0-6]_*.json")}  # the previous regime of 00-06 stays readable
    for notebook, verdicts in nb.items():  # still provisional: regrading reproduces the frozen copy exactly
        assert json.loads(json.dumps([v.to_record() for v in verdicts.values()], default=str)) == frozen[notebook]["claims"]


def test_files_written(graded):
    out, figures, notebooks = graded
    assert sorted(p.name for p in figures.glob("*.png")) == sorted(f"{nb[:2]}_forest.png" for nb in notebooks)
    for path in sorted(RESULTS / f"{nb}.json" for nb in notebooks):
        before, after = json.loads(path.read_text()), json.loads((out / path.name).read_text())
        assert {k: v for k, v in before.items() if k not in ("claims", "declarations_commit")} == {
            k: v for k, v in after.items() if k not in ("claims", "declarations_commit")}
        assert all(c["provisional"] and {"id", "kind", "test", "sesoi", "replicates", "verdict"} <= set(c) for c in after["claims"])
        copy = json.loads((out / "provisional" / path.name).read_text())
        assert copy["claims"] == after["claims"] and copy["declarations_commit"] == after["declarations_commit"]
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|uncommitted|unknown", copy["source_results_commit"])
    table = readme_table(out)
    assert all(re.search(rf"^- {nb}: .*†$", table, re.M) for nb in notebooks)  # every provisional summary carries the mark
    again = write_provisional(out)  # idempotent on its own output
    assert {nb: [v.to_record() for v in vs] for nb, vs in again.items()} == {nb: [v.to_record() for v in vs.values()] for nb, vs in notebooks.items()}
