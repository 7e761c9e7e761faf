"""The README's results block, generated from ``results/*.json`` (and ``results/provisional/*.json``) by
``python -m kdlib.results``: one summary line per notebook, the paper claims, the controls, and the verdicts of the
previous regime for notebooks re-run since."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from kdlib.paths import repo_root
from kdlib.results.report import is_graded, level, notes, summary_line

START, END = "<!-- results:start -->", "<!-- results:end -->"
PROVISIONAL = "†"
LEGEND = (f"{PROVISIONAL} provisional: declared after the data and graded from the committed records "
          "(the notebook's claims cell moves to graded verdicts when it is next run).")

Row = tuple[str, Mapping]  # (notebook, verdict record)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(record: Mapping) -> str:
    return record["verdict"] + (f" {PROVISIONAL}" if record.get("provisional") else "")


def _claim(record: Mapping) -> str:
    return f"{record['statement']} (`{record['id']}`)"


def paper_table(rows: Sequence[Row]) -> list[str]:
    """The paper claims as Markdown lines."""
    lines = ["| notebook | claim | formula | paper | ours | CI level | verdict | size check | notes |", "|---|---|---|---|---|---|---|---|---|"]
    for notebook, r in rows:
        cells = (notebook, _claim(r), r["formula"], r["paper_value"], r["ours"], level(r), _verdict(r), r["size_check"], notes(r))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def control_table(rows: Sequence[Row]) -> list[str]:
    """The controls (our diagnostics and the notes' [R] expectations) as Markdown lines."""
    lines = ["| notebook | claim | ours | CI level | verdict | notes |", "|---|---|---|---|---|---|"]
    for notebook, r in rows:
        cells = (notebook, _claim(r), r["ours"], level(r), _verdict(r), notes(r))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _block(files: Sequence[Mapping]) -> list[str]:
    """Summary lines, then the paper-claims and controls tables of ``files`` (loaded results or provisional files)."""
    lines, rows = [], []
    for data in files:
        graded = [c for c in data["claims"] if is_graded(c)]
        if len(graded) < len(data["claims"]):
            lines.append(f"- {data['notebook']}: not graded (first-regime yes / no claims); run `python -m kdlib.results provisional`")
            continue
        marker = f" {PROVISIONAL}" if graded and all(c["provisional"] for c in graded) else ""
        lines.append(f"- {summary_line(data['notebook'], graded)}{marker}")
        rows += [(data["notebook"], c) for c in graded]
    paper = [row for row in rows if row[1]["kind"] == "paper"]
    controls = [row for row in rows if row[1]["kind"] != "paper"]
    return [*lines, "", "**Paper claims**", "", *paper_table(paper), "", "**Controls**", "", *control_table(controls)]


def _load(paths: Sequence[Path]) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths]


def readme_table(results_dir: Path | None = None) -> str:
    """The README's results block in Markdown, built from every ``results/*.json`` of the full profile."""
    results_dir = results_dir or repo_root() / "results"
    current = _load(sorted(results_dir.glob("*.json")))
    rerun = {d["notebook"] for d in current if any(is_graded(c) and not c["provisional"] for c in d["claims"])}
    previous = [d for d in _load(sorted((results_dir / "provisional").glob("*.json"))) if d["notebook"] in rerun]
    lines = [LEGEND, "", *_block(current), "", "### Previous regime (provisional verdicts)", ""]
    if previous:
        lines += ["The provisional verdicts of notebooks re-run since, kept so that a reader sees what changed and why.", "", *_block(previous)]
    else:
        lines.append("None yet: no notebook has been re-run on declared claims, so the tables above are the provisional verdicts.")
    return "\n".join(lines)


def update_readme(readme: Path | None = None) -> bool:
    """Replace the text between the results markers in README.md; returns whether it changed."""
    readme = readme or repo_root() / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{readme_table(readme.parent / 'results')}\n{END}{tail}"
    readme.write_text(new)
    return new != text
