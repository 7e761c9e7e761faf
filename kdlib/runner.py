"""Execute the numbered notebooks headlessly with papermill: ``python -m kdlib.runner [--profile P] [NN ...]``.

Full-profile runs write the executed notebooks back in place (readers see full outputs); quick runs write
to ``build/quick/notebooks`` so they never overwrite committed outputs. Every notebook must have exactly one
cell tagged ``parameters`` that defines ``profile``; only parameters that differ from its defaults are passed (so
a full run gets no second parameters cell), and every executed notebook is cleaned of run noise (:mod:`kdlib.clean`).
Stops at the first failure, naming the notebook and cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

from kdlib.clean import clean_file, literal_assignments
from kdlib.paths import repo_root
from kdlib.profiles import PROFILES, check_profile


def notebooks(numbers: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, in order; ``numbers`` (e.g. ``["00", "3"]``) selects a subset."""
    found = sorted(p for p in (repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not numbers:
        return found
    wanted = {n.zfill(2) for n in numbers}
    unknown = wanted - {p.name[:2] for p in found}
    if unknown:
        raise ValueError(f"no notebook numbered {sorted(unknown)}; have {[p.name for p in found]}")
    return [p for p in found if p.name[:2] in wanted]


def parameter_defaults(path: Path) -> dict:
    """The literal defaults of the one cell tagged ``parameters``, which must define ``profile`` (papermill would
    otherwise inject its cell at the top)."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    defaults = literal_assignments(cells[0].source)
    if defaults is None or "profile" not in defaults:
        raise ValueError(f"{path.name}: the parameters cell must assign literals only, `profile` among them")
    return defaults


def run(path: Path, profile: str) -> float:
    """Execute one notebook; returns its wall time. Raises ``SystemExit`` with the failing cell on error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    defaults = parameter_defaults(path)
    output = path if profile == "full" else repo_root() / "build" / "quick" / "notebooks" / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters={} if defaults["profile"] == profile else {"profile": profile}, kernel_name="python3",
            cwd=str(path.parent), progress_bar=False, request_save_on_cell_execute=True,
        )
    except PapermillExecutionError as error:
        raise SystemExit(
            f"FAILED {path.name}, cell {error.cell_index} (execution count {error.exec_count}): {error.ename}: {error.evalue}\n"
            f"executed notebook with the traceback: {output}"
        ) from None
    clean_file(output)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.runner", description=__doc__)
    parser.add_argument("--profile", default="full", choices=PROFILES)
    parser.add_argument("--list", action="store_true", help="list the notebooks and exit")
    parser.add_argument("numbers", nargs="*", help="notebook numbers to run (default: all)")
    args = parser.parse_args(argv)
    check_profile(args.profile)
    selected = notebooks(args.numbers)
    if args.list:
        for path in selected:
            print(path.name)
        return 0
    timings = []
    for path in selected:
        print(f"running {path.name} ({args.profile}) ...", flush=True)
        timings.append((path.name, run(path, args.profile)))
    print(f"\n{'notebook':40s} {'profile':8s} {'seconds':>8s}")
    for name, seconds in timings:
        print(f"{name:40s} {args.profile:8s} {seconds:8.1f}")
    print(f"{'total':40s} {'':8s} {sum(s for _, s in timings):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
