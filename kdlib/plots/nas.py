"""Notebook 06 (LayerNAS): accuracy-vs-cost fronts and best-so-far curves."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D


def nas_fronts(cloud: pd.DataFrame, fronts: pd.DataFrame, picks: pd.DataFrame, colours: dict, cost_names: dict[str, str],
               pick_method: str = "LayerNAS") -> plt.Figure:
    """Accuracy against cost, one panel per space (in ``cloud.name`` order).

    Draws every architecture (grey), the exhaustive front (black steps), each method's mean front over seeds
    (coloured steps, named in the legend), the constrained picks (dots; ``pick_method``'s as large stars drawn last,
    so they stay visible where the baselines' dots pile up) and the cost limits (dotted). The y-range covers every
    front and pick (the cloud's lowest 20 % may fall below it).

    Args:
        cloud: name, cost, accuracy (%) of every architecture.
        fronts: name, method, cost_level, accuracy (%); method ``"exhaustive"`` is the exhaustive front.
        picks: name, method, cost, accuracy (%), cost_limit of every constrained pick.
        colours: method -> colour; cost_names: space name -> x-axis label.

    Raises:
        ValueError: no space to draw.
    """
    names = list(dict.fromkeys(cloud.name))
    if not names:
        raise ValueError("no space to draw")
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.0), squeeze=False, layout="constrained")
    methods = [m for m in dict.fromkeys(fronts.method) if m != "exhaustive"]
    for ax, name in zip(axes[0], names):
        points, lines, chosen = cloud[cloud.name == name], fronts[fronts.name == name], picks[picks.name == name]
        ax.scatter(points.cost, points.accuracy, s=2, color="0.82", rasterized=True)
        exhaustive = lines[lines.method == "exhaustive"]
        ax.step(exhaustive.cost_level, exhaustive.accuracy, where="post", color="black", lw=1.3)
        for method in methods:
            line = lines[lines.method == method]
            ax.step(line.cost_level, line.accuracy, where="post", color=colours[method], lw=1.3, alpha=0.9)
        for method in [m for m in dict.fromkeys(chosen.method) if m != pick_method] + [pick_method]:
            mine = chosen[chosen.method == method]
            star = method == pick_method
            ax.scatter(mine.cost, mine.accuracy, s=110 if star else 22, marker="*" if star else "o", color=colours[method], edgecolor="black",
                       lw=0.6 if star else 0.3, alpha=1.0 if star else 0.7, zorder=4 if star else 3)
        for limit in chosen.cost_limit.unique():
            ax.axvline(limit, color="0.5", ls=":", lw=1)
        shown = pd.concat([chosen.accuracy, lines.accuracy]).dropna()  # every pick and every front stays in view
        low = min(np.percentile(points.accuracy, 20), shown.min() if len(shown) else np.inf) - 1
        ax.set_ylim(low, max(points.accuracy.max(), shown.max() if len(shown) else -np.inf) + 0.7)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.set(title=name, xlabel=cost_names[name])
    axes[0, 0].set_ylabel("test accuracy (%)")
    handles = [Line2D([], [], marker="o", ls="", color="0.82", label="all architectures"), Line2D([], [], color="black", label="front: exhaustive"),
               *[Line2D([], [], color=colours[m], label=f"front: {m}") for m in methods],
               *[Line2D([], [], marker="*" if m == pick_method else "o", ms=11 if m == pick_method else 5, ls="", color=colours[m], mec="black",
                        label=f"picks: {m}") for m in [pick_method] + [m for m in methods if m != pick_method]],
               Line2D([], [], color="0.5", ls=":", label="cost limits")]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, frameon=False, fontsize=9)
    return fig


def nas_best_so_far(traces: pd.DataFrame, oracles: dict[str, float], styles: dict[str, dict], note: str = "") -> plt.Figure:
    """Best test accuracy so far against evaluations, one panel per task (in ``traces.name`` order): each method's
    mean over seeds (a baseline's ± std as a band), a dot where a curve starts (its first feasible evaluation: a
    curve starts late when the first evaluations exceed the limit), and the oracle (dashed). The y-range covers
    every mean curve and the oracle, so no curve is cropped at the top.

    Args:
        traces: name, method, seed, evaluation, accuracy (%; NaN before the run's first feasible evaluation).
        oracles: task name -> the oracle's test accuracy (%).
        styles: method -> matplotlib line keywords (``color``, ``ls``, ``lw``); ``band=True`` adds a ± std band.
        note: a sentence printed above the legend, under the panels.

    Raises:
        ValueError: no traces, or a method without a style.
    """
    names = list(dict.fromkeys(traces.name))
    missing = sorted(set(traces.method) - set(styles))
    if not names or missing:
        raise ValueError(f"need traces and a style for every method (missing: {missing})")
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.8 * columns, 3.4 * rows), squeeze=False, layout="constrained")
    for ax, name in zip(axes.flat, names):
        values, late_starts = [], []
        for method, style in styles.items():
            curve = traces[(traces.name == name) & (traces.method == method)].groupby("evaluation").accuracy.agg(["mean", "std"]).dropna(subset=["mean"])
            if curve.empty:
                continue
            line = {k: v for k, v in style.items() if k != "band"}
            ax.plot(curve.index, curve["mean"], **line)
            ax.plot(curve.index[:1], curve["mean"].iloc[:1], marker="o", ms=5, color=line.get("color"), ls="", zorder=4)
            if style.get("band"):
                spread = curve["std"].fillna(0)
                ax.fill_between(curve.index, curve["mean"] - spread, curve["mean"] + spread, color=line.get("color"), alpha=0.15, lw=0)
            values.append(curve["mean"].to_numpy())
            if curve.index[0] > 1:
                late_starts.append(curve["mean"].iloc[0])
        ax.axhline(oracles[name], color="black", ls="--", lw=1)
        every = np.concatenate(values)
        low = min([np.percentile(every, 10), *late_starts])  # a late start is the point: keep it in view
        ax.set_ylim(low - 1, max(every.max(), oracles[name]) + 0.5)
        ax.set(title=name, xlabel="evaluations")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("test acc. of best pick so far (%)")
    handles = [Line2D([], [], **{k: v for k, v in s.items() if k != "band"}, label=m) for m, s in styles.items()]
    handles.append(Line2D([], [], color="black", ls="--", label="oracle (best validation within the limit)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, frameon=False, fontsize=9,
               title=textwrap.fill(note, 60 * columns) if note else None, title_fontsize=9)
    return fig
