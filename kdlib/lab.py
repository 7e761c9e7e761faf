"""Read and run the notebooks in JupyterLab without touching the committed reproduction.

``./reproduce.sh lab`` (``python -m kdlib.lab``) serves *working copies* of the notebooks from ``build/lab/notebooks``
(made on first use; ``--fresh`` re-copies them) with ``KDLIB_OUTPUT=build/lab/output``, so whatever a reader runs,
in either profile, writes its results and figures there: ``notebooks/``, ``results/`` and ``figures/`` stay as
committed. ``--quick`` starts the server with ``KDLIB_PROFILE=quick`` (every notebook runs its quick profile).

A full-profile run a reader wants to keep is promoted deliberately with ``./reproduce.sh promote NN``: the working
copy (cleaned, :mod:`kdlib.clean`), its results file and its figures replace the committed ones, and the README's
results block is regenerated. (``./reproduce.sh NN`` re-runs a notebook headlessly in place, the canonical way.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from kdlib.clean import clean_file
from kdlib.paths import repo_root
from kdlib.profiles import PROFILE_ENV
from kdlib.results import update_readme


def lab_root() -> Path:
    return repo_root() / "build" / "lab"


def working_copies(fresh: bool = False) -> Path:
    """Copy every committed notebook to ``build/lab/notebooks`` (keeping a reader's copies unless ``fresh``)."""
    target = lab_root() / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    for notebook in sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        copy = target / notebook.name
        if fresh or not copy.exists():
            shutil.copyfile(notebook, copy)
    return target


def lab_environment(quick: bool = False) -> dict[str, str]:
    """The server's environment: outputs redirected to ``build/lab/output``, optionally the quick profile."""
    env = {**os.environ, "KDLIB_OUTPUT": str(lab_root() / "output")}
    if quick:
        env[PROFILE_ENV] = "quick"
    return env


def lab_command(port: int, root_dir: Path, allow_root: bool | None = None) -> list[str]:
    """``jupyter lab`` on ``root_dir`` (``--allow-root`` when running as root, as in containers)."""
    allow_root = os.geteuid() == 0 if allow_root is None else allow_root
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root_dir}", f"--port={port}", "--no-browser", "--ip=127.0.0.1"]
    return command + (["--allow-root"] if allow_root else [])


def promote(number: str) -> list[Path]:
    """Replace the committed notebook ``number``, its results file and figures by the working copy's full-profile run.

    Raises:
        ValueError: no working copy, or no full-profile results file from it.
    """
    number = number.zfill(2)
    copies = sorted((lab_root() / "notebooks").glob(f"{number}_*.ipynb"))
    if not copies:
        raise ValueError(f"no working copy of notebook {number} in {lab_root() / 'notebooks'} (start ./reproduce.sh lab first)")
    output = lab_root() / "output" / "full"
    results = output / "results" / f"{copies[0].stem}.json"
    if not results.exists() or json.loads(results.read_text()).get("profile") != "full":
        raise ValueError(f"{results} holds no full-profile run of notebook {number}: run it in the full profile in JupyterLab first")
    promoted = [repo_root() / "notebooks" / copies[0].name, repo_root() / "results" / results.name]
    shutil.copyfile(copies[0], promoted[0])
    clean_file(promoted[0])
    shutil.copyfile(results, promoted[1])
    for figure in sorted((output / "figures").glob(f"{number}_*.png")):
        promoted.append(repo_root() / "figures" / figure.name)
        shutil.copyfile(figure, promoted[-1])
    update_readme()
    return promoted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlib.lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="start JupyterLab on the working copies (the default)")
    for p in (parser, serve):
        p.add_argument("--port", type=int, default=8888)
        p.add_argument("--fresh", action="store_true", help="re-copy the committed notebooks over the working copies")
        p.add_argument("--quick", action="store_true", help="run every notebook in its quick profile")
    sub.add_parser("promote", help="promote a working copy's full-profile run").add_argument("number")
    args = parser.parse_args(argv)
    if args.command == "promote":
        for path in promote(args.number):
            print(f"promoted {path.relative_to(repo_root())}")
        return 0
    root = working_copies(args.fresh)
    print(f"[kdlib] JupyterLab on the working copies in {root.relative_to(repo_root())}; results and figures go to "
          f"{(lab_root() / 'output').relative_to(repo_root())} (promote a full run with ./reproduce.sh promote NN)", flush=True)
    os.execvpe(sys.executable, lab_command(args.port, root), lab_environment(args.quick))
    return 0  # pragma: no cover - replaced by the server


if __name__ == "__main__":
    sys.exit(main())
