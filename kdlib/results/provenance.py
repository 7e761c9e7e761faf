"""Where a result comes from: the git commit of the code (or of one file) and the package versions."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from kdlib.paths import repo_root

CODE = ("kdlib", "pyproject.toml", "reproduce.sh")  # what a results file's commit vouches for
PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "seaborn")


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def provenance() -> dict:
    """Git commit (``-dirty`` when the code differs from it; notebooks, results and figures are outputs), versions."""
    try:
        commit = _git(["rev-parse", "HEAD"], repo_root())
        commit += "-dirty" if _git(["status", "--porcelain", "--", *CODE], repo_root()) else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"git_commit": commit, "versions": versions, "platform": platform.platform(), "argv0": Path(sys.argv[0]).name}


def file_commit(path: Path) -> str:
    """The last git commit that touched ``path``, with ``-dirty`` when the file differs from it.

    Returns ``"uncommitted"`` for a file git does not track yet and ``"unknown"`` outside git.
    """
    path = Path(path).resolve()
    try:
        _git(["rev-parse", "--is-inside-work-tree"], path.parent)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    try:
        commit = _git(["log", "-1", "--format=%H", "--", path.name], path.parent)
    except subprocess.CalledProcessError:  # a repository without any commit yet
        commit = ""
    if not commit:
        return "uncommitted"
    return commit + ("-dirty" if _git(["status", "--porcelain", "--", path.name], path.parent) else "")


def records_commit(path: Path) -> str:
    """The last git commit that touched a results file, with ``-dirty`` when the file's records differ from that
    commit's (its claims may change: they are graded from the records). ``"uncommitted"`` / ``"unknown"`` as
    :func:`file_commit`."""
    path = Path(path).resolve()
    commit = file_commit(path).removesuffix("-dirty")
    if commit in ("uncommitted", "unknown"):
        return commit
    committed = json.loads(_git(["show", f"{commit}:./{path.name}"], path.parent))
    return commit + ("" if committed["records"] == json.loads(path.read_text())["records"] else "-dirty")
