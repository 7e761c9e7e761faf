"""Notebook 10 (L2T-DLN): test accuracy against student steps per method, the learned loss's shape over the 1-vs-1
inputs, and the teachers' step sizes. Frames come from kdlib.experiments.l2t_dln (curves(), the grid's rows)."""

from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def accuracy_vs_student_steps(curves: pd.DataFrame, methods: Sequence[str], palette: dict, accuracy_set: str = "test") -> plt.Axes:
    """Accuracy (%) on ``accuracy_set`` against student SGD steps, one line per method (mean ± std over replicates)."""
    data = curves[curves.method.isin(methods) & (curves.set == accuracy_set)].assign(acc=lambda f: 100 * f.accuracy)
    if data.empty:
        raise ValueError(f"no {accuracy_set} curves for these methods")
    ax = plt.subplots(figsize=(7.5, 4))[1]
    sns.lineplot(data=data, x="step", y="acc", hue="method", hue_order=[m for m in methods if m in set(data.method)], palette=palette,
                 marker="o", errorbar="sd", ax=ax)
    ax.set(xlabel="student SGD steps (every method: the same batches in the same order)", ylabel=f"{accuracy_set} accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def loss_surfaces(frame: pd.DataFrame, grid: Sequence[float], start: str, taught: Sequence[str], reference: str) -> plt.Figure:
    """The DLN's value on one 1-vs-1 row [s_true, s_other, 1, 0] over ``grid`` x ``grid`` (means over replicates).

    Top row: the start every taught DLN shares (``start``'s ``surface_start``) and each ``taught`` method's DLN at the
    end; bottom row: ``reference``'s surface (e.g. the random DLN) and each taught DLN's change from its start.
    ``frame`` holds the grid's rows with ``surface_start`` / ``surface_end`` (rows: s_true, columns: s_other).
    """
    mean = lambda method, column: np.mean(np.array(frame[frame.method == method][column].tolist()), 0)  # noqa: E731
    if frame.empty or not set([start, reference, *taught]) <= set(frame.method):
        raise ValueError("the frame lacks some of the methods to draw")
    columns = 1 + len(taught)
    fig, axes = plt.subplots(2, columns, figsize=(3.1 * columns, 5.8), squeeze=False, layout="constrained", sharex=True, sharey=True)
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    tops = [(f"{start} (every taught DLN's start)", mean(start, "surface_start"))] + [(f"{m}: end", mean(m, "surface_end")) for m in taught]
    low, high = min(s.min() for _, s in tops), max(s.max() for _, s in tops)
    for ax, (title, values) in zip(axes[0], tops):
        image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", cmap="viridis", vmin=low, vmax=high)
        ax.contour(np.asarray(grid), np.asarray(grid), values, levels=8, colors="white", linewidths=0.5)
        ax.set_title(textwrap.fill(title, 28), fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label="DLN value of the row")
    image = axes[1][0].imshow(mean(reference, "surface_start"), origin="lower", extent=extent, aspect="auto", cmap="viridis")
    axes[1][0].set_title(textwrap.fill(f"{reference} (for reference; own scale)", 28), fontsize=9)
    changes = [mean(m, "surface_end") - mean(m, "surface_start") for m in taught]
    bound = max(1e-12, max(float(np.abs(c).max()) for c in changes))
    for ax, method, change in zip(axes[1][1:], taught, changes):
        image = ax.imshow(change, origin="lower", extent=extent, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_title(textwrap.fill(f"{method}: end − start", 28), fontsize=9)
    fig.colorbar(image, ax=axes[1].tolist(), shrink=0.85, label="change")
    for ax in axes[1]:
        ax.set_xlabel("s_other = sigmoid(z_j)")
    for ax in axes[:, 0]:
        ax.set_ylabel("s_true = sigmoid(z_y)")
    return fig


def teacher_steps(frame: pd.DataFrame, methods: Sequence[str], palette: dict) -> plt.Figure:
    """Per teaching step, mean ± sd over replicates: the norm of the DLN update (log axis; the band's lower edge is
    clipped at a tenth of the mean) and the validation loss after the probe unroll."""
    rows = [pd.DataFrame(row.teacher_log).assign(method=row.method, seed=row.seed) for row in frame[frame.method.isin(methods)].itertuples()]
    if not rows:
        raise ValueError("no teacher logs for these methods")
    data = pd.concat(rows, ignore_index=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for ax, (column, label) in zip(axes, (("update_norm", "‖φ' − φ‖ per teaching step"), ("probe_val_loss", "validation CE after the probe unroll"))):
        for method in [m for m in methods if m in set(data.method)]:
            stats = data[data.method == method].groupby("step")[column].agg(["mean", "std"]).fillna(0.0)
            ax.plot(stats.index, stats["mean"], color=palette[method], lw=1.4, label=method)
            ax.fill_between(stats.index, (stats["mean"] - stats["std"]).clip(lower=stats["mean"] / 10), stats["mean"] + stats["std"],
                            color=palette[method], alpha=0.15, lw=0)
        ax.set(xlabel="student SGD steps", ylabel=label, yscale="log" if column == "update_norm" else "linear")
    axes[0].legend(fontsize=8)
    return fig
