"""Notebook 01 (LELP): every method's paired test-accuracy difference to vanilla KD, and LELP's validation landscape."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def differences_to_baseline(frame: pd.DataFrame, methods: Sequence[str], palette: dict, baseline: str = "vanilla KD", errorbar: str | tuple = "sd",
                            order: Sequence[str] | None = None) -> sns.FacetGrid:
    """Each method's test accuracy minus the baseline's on the same replicate (pp), one panel per task: a dot per
    replicate and the mean with ``errorbar`` (seaborn's: "sd", or ("ci", 95) for a 95 % interval of the mean).

    ``frame`` has columns experiment (the task), method, seed and value (test accuracy, a fraction); ``order``: the
    panels' order (default: sorted).
    """
    wide = frame.pivot_table(index=["experiment", "seed"], columns="method", values="value")
    if baseline not in wide:
        raise ValueError(f"the baseline {baseline!r} is not in the frame")
    shown = [m for m in methods if m in wide and m != baseline]
    diffs = (100 * wide[shown].sub(wide[baseline], axis=0)).stack().rename("diff").reset_index().dropna()
    g = sns.catplot(data=diffs, x="method", y="diff", hue="method", order=shown, hue_order=shown, palette=palette, col="experiment", col_wrap=2,
                    kind="strip", size=4, alpha=0.6, height=3.4, aspect=1.5, sharey=False, sharex=False, legend=False,
                    col_order=list(order) if order is not None else None)
    for task, ax in g.axes_dict.items():
        rows = diffs[diffs.experiment == task]
        sns.pointplot(data=rows, x="method", y="diff", order=[m for m in shown if m in set(rows.method)], color="black", errorbar=errorbar,
                      linestyle="none", markers="_", markersize=14, capsize=0.15, err_kws={"linewidth": 1.2}, ax=ax)
        ax.axhline(0, color="grey", lw=0.8)
        ax.tick_params(axis="x", rotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    g.set_titles("{col_name}")
    g.set_axis_labels("", f"test accuracy − {baseline} (pp)")
    return g


def selection_landscape(selection: pd.DataFrame, method: str = "LELP") -> plt.Figure:
    """Validation accuracy (%) against beta for every S of the selection sweep, one panel per task, with each
    setting's split entropy as the point label."""
    rows = selection[(selection.method == method) & (selection.stage == "sweep")].assign(val=lambda f: 100 * f.val_accuracy)
    if rows.empty:
        raise ValueError(f"no {method} rows in the selection sweep")
    tasks = list(dict.fromkeys(rows.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.3), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for s, curve in rows[rows.task == task].groupby("subclasses"):
            curve = curve.sort_values("beta")
            ax.plot(curve.beta, curve.val, marker="o", label=f"S = {s}")
            for b, v, h in zip(curve.beta, curve.val, curve.split_entropy):
                ax.annotate(f"{h:.2f}", (b, v), textcoords="offset points", xytext=(0, 5), fontsize=7, ha="center")
        ax.set_xscale("log", base=2)
        ax.set(title=task, xlabel="beta (units of the score RMS)", ylabel="validation accuracy (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
