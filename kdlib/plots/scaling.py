"""Notebook 05's figures (vanilla KD at scale): the paper's Fig. 1 redrawn, the validation curves of the grid and the
CE-only schedule check."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import seaborn as sns


def gap_bars(gaps: pd.DataFrame, fractions: Sequence[float], recipes: Sequence[str], methods: Sequence[str], palette: dict) -> sns.FacetGrid:
    """The VanillaKD paper's Fig. 1 redrawn: each method's test accuracy minus vanilla KD's (column ``gap``, pp) per
    data fraction, one panel per recipe; bars are means over replicates, error bars ± std."""
    data = gaps[gaps.method.isin(methods) & gaps.fraction.isin(fractions) & gaps.recipe.isin(recipes)]
    if data.empty:
        raise ValueError("no gaps to plot for these methods, fractions and recipes")
    data = data.assign(data=[f"{100 * f:g}%" for f in data.fraction])
    g = sns.catplot(data=data, x="data", y="gap", hue="method", order=[f"{100 * f:g}%" for f in fractions], hue_order=list(methods),
                    palette=palette, col="recipe", col_order=list(recipes), kind="bar", errorbar="sd", alpha=0.8, height=3.2, aspect=1.0)
    for ax in g.axes.flat:
        ax.axhline(0, color="black", linewidth=0.8)
    g.set_titles("recipe: {col_name}")
    g.set_axis_labels("training data (share of the pool)", "accuracy − vanilla KD (pp)")
    return g


def validation_curves(curves: pd.DataFrame, fractions: Sequence[float], recipes: Sequence[str], methods: Sequence[str], palette: dict) -> sns.FacetGrid:
    """Validation accuracy (%) against the epoch of each run's cosine schedule, one line per method (mean ± std over
    replicates), panels fraction × recipe: the plateau evidence of the grid."""
    data = curves[(curves.set == "val") & curves.method.isin(methods) & curves.fraction.isin(fractions) & curves.recipe.isin(recipes)]
    if data.empty:
        raise ValueError("no validation curves to plot")
    data = data.assign(acc=100 * data.accuracy, data=[f"{100 * f:g}%" for f in data.fraction])
    g = sns.relplot(data=data, x="epoch", y="acc", hue="method", hue_order=list(methods), palette=palette, row="data",
                    row_order=[f"{100 * f:g}%" for f in fractions], col="recipe", col_order=list(recipes), kind="line", marker="o",
                    errorbar="sd", height=2.4, aspect=1.25, facet_kws={"sharex": "row", "sharey": "row"})
    g.set_titles("{row_name} data, {col_name}")
    g.set_axis_labels("epoch (cosine schedule to zero)", "validation accuracy (%)")
    return g


def schedule_check(schedule: pd.DataFrame, palette: dict) -> sns.FacetGrid:
    """CE-only test accuracy (%) at 100 % data against the schedule's length (epochs), one line per recipe (mean ± std
    over replicates, dots the replicates): a run on a plateau gains little when its schedule doubles."""
    if schedule.empty:
        raise ValueError("no schedule-check results to plot")
    data = schedule.assign(acc=100 * schedule.accuracy)
    g = sns.relplot(data=data, x="epochs", y="acc", hue="recipe", palette=palette, kind="line", marker="o", errorbar="sd", height=3.2, aspect=1.3)
    sns.stripplot(data=data, x="epochs", y="acc", hue="recipe", palette=palette, native_scale=True, ax=g.ax, legend=False, alpha=0.5, size=4)
    epochs = sorted(data.epochs.unique())
    g.ax.set_xscale("log", base=2)
    g.ax.set_xticks(epochs, [str(e) for e in epochs])
    g.ax.minorticks_off()
    g.set_axis_labels("epochs at 100 % data (log scale)", "CE-only test accuracy (%)")
    return g
