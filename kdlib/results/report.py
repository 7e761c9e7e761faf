"""Graded verdicts for readers: a notebook's claims table, its loud lines, and one summary line per notebook.

Everything here reads verdict records (:meth:`Verdict.to_record`, the ``claims`` of a results file), so the notebooks
and the README show the same words.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping, Sequence

import pandas as pd

from kdlib.profiles import check_profile
from kdlib.results.grading import CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, OUT_OF_SCOPE, REPRODUCED, Verdict


def is_graded(record: Mapping) -> bool:
    """Whether a results file's claim is a graded verdict (not a first-regime yes / no claim)."""
    return "verdict" in record


def level(record: Mapping) -> str:
    """The interval's confidence level as text, e.g. ``"98.33 %"`` (empty when there is no interval)."""
    return "" if record.get("confidence") is None else f"{100 * record['confidence']:.4g} %"


def notes(record: Mapping) -> str:
    """What a reader needs beside the verdict: per-task verdicts of a pooled claim, the gate, what would settle it."""
    out = []
    task_verdicts = Counter(t["verdict"] for t in record.get("tasks", ()))
    if len(record.get("tasks", ())) > 1:
        out.append("per task: " + ", ".join(f"{n} {v}" for v, n in task_verdicts.most_common()))
    if record.get("gate"):
        out.append(record["gate"])
    if record.get("gated_out"):
        out.append("gated out: " + ", ".join(record["gated_out"]))
    if record.get("replicates_to_settle"):
        out.append(f"settled by ~{record['replicates_to_settle']} replicates per task")
    if (record.get("plan") or {}).get("capped"):
        out.append("power short: replicates capped by the budget")
    return "; ".join(out)


def records_table(records: Sequence[Mapping]) -> pd.DataFrame:
    """Verdict records as a table: paper claims first, then controls, full text."""
    ordered = [r for r in records if r["kind"] == "paper"] + [r for r in records if r["kind"] != "paper"]
    rows = [{
        "claim": r["id"], "kind": r["kind"], "statement": r["statement"], "test": r["test"], "formula": r["formula"], "paper": r["paper_value"],
        "ours": r["ours"], "CI level": level(r), "verdict": r["verdict"], "size check": r["size_check"], "notes": notes(r),
    } for r in ordered]
    return pd.DataFrame(rows).set_index("claim")


def verdict_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """A notebook's claims cell: every verdict in full text, paper claims first, controls after."""
    return records_table([v.to_record() for v in verdicts])


def summary_line(notebook: str, records: Sequence[Mapping]) -> str:
    """E.g. ``"01_lelp: 3 paper claims — 0 reproduced, 1 contradicted, 2 inconclusive; 4 controls"``."""
    paper = [r["verdict"] for r in records if r["kind"] == "paper" and r["verdict"] != OUT_OF_SCOPE]
    counts = Counter(paper)
    line = f"{notebook}: {len(paper)} paper claim{'s' if len(paper) != 1 else ''} — " + ", ".join(
        f"{counts[v]} {v}" for v in (REPRODUCED, CONTRADICTED, INCONCLUSIVE))
    if counts[NOT_TESTABLE]:
        line += f", {counts[NOT_TESTABLE]} {NOT_TESTABLE}"
    out_of_scope = sum(r["verdict"] == OUT_OF_SCOPE for r in records)
    if out_of_scope:
        line += f"; {out_of_scope} {OUT_OF_SCOPE}"
    controls = sum(r["kind"] == "control" for r in records)
    return line + f"; {controls} control{'s' if controls != 1 else ''}"


def report_verdicts(verdicts: Sequence[Verdict], profile: str) -> pd.DataFrame:
    """Print one loud line per paper claim not reproduced (full profile), or say that quick-profile verdicts grade
    the reduced setting and not the paper; return :func:`verdict_table`."""
    check_profile(profile)
    records = [v.to_record() for v in verdicts]
    if profile == "full":
        for r in records:
            if r["kind"] == "paper" and r["verdict"] not in (REPRODUCED, OUT_OF_SCOPE):
                print(f"PAPER CLAIM {r['verdict'].upper()} [{r['id']}] {r['statement']}: paper {r['paper_value']}; ours {r['ours']}")
    else:
        notebook = verdicts[0].notebook if verdicts else "?"
        print(f"quick profile: {summary_line(notebook, records)} (graded on the reduced setting: not verdicts of the paper)")
    return records_table(records)
