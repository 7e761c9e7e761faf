"""The seaborn theme, figure saving and the method plots several notebooks share (bars, accuracy against labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from kdlib.paths import output_dir


PALETTE = "colorblind"


def set_theme() -> None:
    """The kdlib look: seaborn whitegrid, colour-blind palette, readable sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook", rc={"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig: plt.Figure, notebook: str, name: str, profile: str) -> Path:
    """Save ``fig`` as ``figures/<NN>_<name>.png`` (``build/quick/figures`` in the quick profile)."""
    number = notebook.split("_", 1)[0]
    if not number.isdigit():
        raise ValueError(f"notebook must start with its number, e.g. '00_data_and_teachers', got {notebook!r}")
    path = output_dir("figures", profile) / f"{number}_{name}.png"
    fig.savefig(path)
    return path


def method_bars(frame: pd.DataFrame, x: str, y: str = "value", hue: str = "method", ax: plt.Axes | None = None, scale: float = 100.0) -> plt.Axes:
    """Bars of the mean over seeds with one dot per seed (the honest picture of the spread)."""
    if frame.empty:
        raise ValueError("nothing to plot")
    data = frame.assign(**{y: frame[y] * scale})
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    sns.barplot(data=data, x=x, y=y, hue=hue, errorbar=None, alpha=0.75, ax=ax)
    sns.stripplot(data=data, x=x, y=y, hue=hue, dodge=True, palette="dark:black", size=3, legend=False, ax=ax)
    low, high = data[y].min(), data[y].max()
    ax.set_ylim(max(0.0, low - (high - low) * 0.6 - 1), min(100.0 if scale == 100 else high * 1.05, high + (high - low) * 0.3 + 1))
    return ax


def method_palette(methods: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One fixed colour per method, so every figure of a notebook colours a method the same way."""
    return dict(zip(methods, sns.color_palette(PALETTE, len(methods))))


def accuracy_vs_labels(frame: pd.DataFrame, methods: Sequence[str], sizes: dict[str, Sequence[int]], palette: dict) -> sns.FacetGrid:
    """Test accuracy (%) of ``methods`` against the labelled-set size |L|, one panel per dataset (mean ± std over seeds).

    ``frame`` has columns dataset, n_labelled, method and test_accuracy (a fraction); ``sizes`` gives each dataset's |L|.
    """
    data = frame[frame.method.isin(methods)].assign(acc=lambda f: 100 * f.test_accuracy)
    if data.empty:
        raise ValueError("none of the methods is in the frame")
    g = sns.relplot(data=data, x="n_labelled", y="acc", hue="method", hue_order=list(methods), palette=palette, col="dataset",
                    kind="line", marker="o", errorbar="sd", height=3.2, aspect=1.1, facet_kws={"sharex": False, "sharey": False})
    for dataset, ax in g.axes_dict.items():
        ax.set_xscale("log")
        ax.set_xticks(list(sizes[dataset]), [str(n) for n in sizes[dataset]])
        ax.minorticks_off()
    g.set_axis_labels("labelled examples |L| (log scale)", "test accuracy (%)")
    g.figure.suptitle("Student accuracy vs labelled-set size (mean ± std over seeds)", y=1.03)
    return g
