"""Notebook 09 (KD-Zero): the searches' best proxy fitness against evaluations, and final accuracy per method and pair."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import seaborn as sns


def search_progress(frame: pd.DataFrame, methods: Sequence[str], palette: dict) -> sns.FacetGrid:
    """Best proxy fitness so far (%) against proxy evaluations, one panel per pair: every search a thin line, each
    strategy's mean over its searches a thick one.

    ``frame`` has one row per evaluation: pair, method, seed, evaluation, best_fitness (a fraction).
    """
    data = frame[frame.method.isin(methods)].assign(best=lambda f: 100 * f.best_fitness)
    if data.empty:
        raise ValueError("no evaluations of these methods")
    g = sns.relplot(data=data, x="evaluation", y="best", hue="method", hue_order=list(methods), palette=palette, col="pair", kind="line",
                    errorbar=None, lw=2.2, height=3.3, aspect=1.2, facet_kws={"sharey": False})
    for pair, ax in g.axes_dict.items():
        for (method, _), rows in data[data.pair == pair].groupby(["method", "seed"]):
            ax.plot(rows.evaluation, rows.best, color=palette[method], lw=0.7, alpha=0.35)
    g.set_titles("{col_name}")
    g.set_axis_labels("proxy evaluations", "best proxy fitness so far (%)")
    return g


def accuracy_by_method(frame: pd.DataFrame, methods: Sequence[str], palette: dict, ylabel: str = "test accuracy (%)") -> sns.FacetGrid:
    """Accuracy (%) of every method, one panel per pair (own y scale): a dot per replicate, the mean ± std beside it.

    ``frame`` has columns experiment (the pair), method, seed and value (a fraction).
    """
    data = frame[frame.method.isin(methods)].assign(acc=lambda f: 100 * f.value)
    if data.empty:
        raise ValueError("none of the methods is in the frame")
    g = sns.catplot(data=data, x="method", y="acc", hue="method", order=list(methods), hue_order=list(methods), palette=palette, col="experiment",
                    kind="strip", size=4, alpha=0.6, height=3.6, aspect=1.3, sharey=False, legend=False)
    for pair, ax in g.axes_dict.items():
        sns.pointplot(data=data[data.experiment == pair], x="method", y="acc", order=list(methods), color="black", errorbar="sd",
                      linestyle="none", markers="_", markersize=14, capsize=0.15, err_kws={"linewidth": 1.2}, ax=ax)
        ax.tick_params(axis="x", rotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    g.set_titles("{col_name}")
    g.set_axis_labels("", ylabel)
    return g
