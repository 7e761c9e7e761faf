"""Clean executed notebooks of run noise: ``python -m kdlib.clean [--check] notebooks/*.ipynb``.

Removes only what a reader does not need and what would tie a committed notebook to one machine:

* stderr streams (warnings that carry the author's paths, text progress bars);
* progress-bar widgets (tqdm's ipywidgets bars: display data whose only text is a bar);
* the ``injected-parameters`` cell papermill adds when it assigns exactly the defaults of the ``parameters`` cell;
* the absolute paths papermill records in the notebook's metadata (kept as file names).

Every other output (tables, figures, printed numbers) is kept byte for byte; ``tests/test_clean.py`` checks that no
number changes. The runner cleans every notebook it executes.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import nbformat

WIDGET = "application/vnd.jupyter.widget-view+json"
BAR = re.compile(r"^\s*[^|]*\|[^|]*\|\s*\d+/\d+")  # tqdm's "desc: 40%|####      | 4/10 [...]"


def _is_noise(output: dict) -> bool:
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return True
    data = output.get("data", {})
    return output.get("output_type") == "display_data" and WIDGET in data and bool(BAR.match(str(data.get("text/plain", ""))))


def literal_assignments(source: str) -> dict[str, object] | None:
    """The literal assignments of a parameters cell, or None if it holds anything else."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    values = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return None
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            return None
    return values


def clean_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return ``notebook`` without stderr, progress-bar widgets and an injected cell equal to the defaults."""
    cells = []
    defaults = None
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags:
            defaults = literal_assignments(cell.source)
        if "injected-parameters" in tags and defaults is not None:
            injected = literal_assignments(cell.source)
            if injected is not None and all(defaults.get(k, object()) == v for k, v in injected.items()):
                continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _is_noise(o)]
        cells.append(cell)
    notebook.cells = cells
    notebook.metadata.pop("widgets", None)
    run = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if run.get(key):
            run[key] = Path(run[key]).name
    return notebook


def clean_file(path: Path, check: bool = False) -> bool:
    """Clean one notebook in place (or, with ``check``, only report); returns whether it needed cleaning."""
    before = path.read_text()
    cleaned = nbformat.writes(clean_notebook(nbformat.reads(before, as_version=4))) + "\n"
    changed = cleaned != before
    if changed and not check:
        path.write_text(cleaned)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.clean", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report notebooks that need cleaning (exit 1 if any)")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    changed = [p for p in args.paths if clean_file(p, args.check)]
    for path in changed:
        print(f"{'needs cleaning' if args.check else 'cleaned'}: {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
