"""Where kdlib reads data and writes caches, results and figures.

Environment variables (all optional):
    KDLIB_DATA   root of vendored datasets (default: ../shared/data beside the repository, else ~/.cache/kdlib/data)
    KDLIB_HOME   where package-shipped sources are fetched to (default: ~/.cache/kdlib)
    KDLIB_CACHE  content-keyed cache of teachers, embeddings and grid cells (default: <repo>/.cache/artifacts)
    KDLIB_OUTPUT where results and figures go instead of the repository (the JupyterLab working copies set it, so
                 that exploring a notebook never overwrites the committed reproduction)
"""

from __future__ import annotations

import os
from pathlib import Path

from kdlib.profiles import check_profile


def repo_root() -> Path:
    """The repository that holds this kdlib checkout (falls back to the working directory)."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").exists() else Path.cwd()


def kdlib_home() -> Path:
    """Per-user home for fetched package sources."""
    return Path(os.environ.get("KDLIB_HOME", Path.home() / ".cache" / "kdlib")).expanduser()


def data_root() -> Path:
    """Root of the vendored datasets (``shared/data`` layout)."""
    if "KDLIB_DATA" in os.environ:
        return Path(os.environ["KDLIB_DATA"]).expanduser()
    shared = repo_root().parent / "shared" / "data"
    return shared if shared.is_dir() else kdlib_home() / "data"


def sources_dir() -> Path:
    """Where files read out of registry packages (wheels, .deb) are kept."""
    return kdlib_home() / "sources"


def cache_root() -> Path:
    """Root of the content-keyed artifact cache."""
    return Path(os.environ.get("KDLIB_CACHE", repo_root() / ".cache" / "artifacts")).expanduser()


def output_dir(kind: str, profile: str) -> Path:
    """``results/`` or ``figures/`` for the full profile; a scratch folder under ``build/`` for quick runs.

    Quick runs (CI, nbval) must never overwrite what the full reproduction committed; with ``KDLIB_OUTPUT`` set,
    both profiles write under ``$KDLIB_OUTPUT/<profile>/`` instead.
    """
    if kind not in ("results", "figures"):
        raise ValueError(f"kind must be 'results' or 'figures', got {kind!r}")
    check_profile(profile)
    if os.environ.get("KDLIB_OUTPUT"):
        base = Path(os.environ["KDLIB_OUTPUT"]).expanduser() / profile
    else:
        base = repo_root() if profile == "full" else repo_root() / "build" / "quick"
    path = base / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
