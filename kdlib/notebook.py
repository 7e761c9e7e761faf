"""The one set-up every notebook runs first: ``run = kdlib.notebook.setup("01_lelp", profile)``.

It resolves the profile (``KDLIB_PROFILE`` overrides the papermill parameter), sets the seaborn theme, the pandas
display options and torch's thread count, silences warnings that carry nothing for a reader, and starts the clock
whose reading goes into the results file.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from kdlib.plots import save_figure, set_theme
from kdlib.profiles import resolve_profile

THREADS_ENV = "KDLIB_THREADS"  # torch threads of a notebook's session (default 2: the machines this companion targets have 2 cores)


@dataclass
class NotebookRun:
    """One execution of a notebook: its name, profile and clock."""

    notebook: str
    profile: str
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds since :func:`setup`."""
        return time.perf_counter() - self.started

    @property
    def threads(self) -> int:
        """The session's torch threads (the figure a notebook quotes beside its step costs)."""
        return torch.get_num_threads()

    def save_figure(self, fig: plt.Figure, name: str) -> Path:
        """Save ``fig`` as ``figures/<NN>_<name>.png`` (``build/quick/figures`` in the quick profile)."""
        return save_figure(fig, self.notebook, name, self.profile)


def setup(notebook: str, profile: str) -> NotebookRun:
    """Set up a notebook's session and return its :class:`NotebookRun`.

    Args:
        notebook: the notebook's stem, e.g. ``"01_lelp"``.
        profile: the papermill parameter (``"quick"`` or ``"full"``).
    """
    profile = resolve_profile(profile)
    torch.set_num_threads(int(os.environ.get(THREADS_ENV, 2)))
    set_theme()
    pd.set_option("display.width", 200, "display.max_colwidth", None, "display.precision", 2)
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm falls back to text bars without ipywidgets
    print(f"{notebook}: profile={profile}")
    return NotebookRun(notebook, profile)


def say(text: str) -> None:
    """Render ``text`` as Markdown in the notebook: prose that quotes measured numbers is written by code from the
    results, so a quick run or a re-run never sits beside stale numbers."""
    display(Markdown(text))


def wrapped(frame: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """A table whose long text cells wrap instead of being cut (claims and paper-vs-ours tables)."""
    return frame.style.set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"}).format(precision=2)
