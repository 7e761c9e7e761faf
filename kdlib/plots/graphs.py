"""Notebook 08 (noisy pseudo-labelling on graphs): test and pseudo-label accuracy per round, accuracy against the
wrong-label rate. Frames come from kdlib.experiments.pseudo_label: one row per dataset x method x replicate x round,
round 0 the base GNN."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import seaborn as sns


def metric_by_round(frame: pd.DataFrame, metric: str, methods: Sequence[str], palette: dict, ylabel: str, first_round: int = 0) -> sns.FacetGrid:
    """``metric`` (a fraction, drawn in %) against the pseudo-labelling round, one line per method (mean ± std over
    replicates), one panel per dataset; rounds from ``first_round`` (0 = the base GNN every method starts from)."""
    data = frame[frame.method.isin(methods) & (frame["round"] >= first_round)].assign(value=lambda f: 100 * f[metric])
    if data.empty:
        raise ValueError("nothing to plot for these methods and rounds")
    order = [m for m in methods if m in set(data.method)]
    g = sns.relplot(data=data, x="round", y="value", hue="method", hue_order=order, palette=palette, col="dataset", kind="line", marker="o",
                    errorbar="sd", height=3.3, aspect=1.15, facet_kws={"sharey": False})
    rounds = sorted(data["round"].unique())
    for ax in g.axes.flat:
        ax.set_xticks(rounds, [str(int(r)) for r in rounds])
    g.set_titles("{col_name}")
    g.set_axis_labels("round (0 = base GNN)" if first_round == 0 else "round", ylabel)
    return g


def accuracy_vs_noise(frame: pd.DataFrame, rates: dict[str, float], base: dict[str, float]) -> sns.FacetGrid:
    """Test accuracy (%) against the wrong-label rate r of the added nodes, one line per round (mean ± std over
    replicates), one panel per dataset; ``rates`` maps each noise method to its r, ``base`` each dataset to the base
    GNN's mean test accuracy (a dashed line)."""
    data = frame[frame.method.isin(list(rates)) & (frame["round"] >= 1)].assign(r=lambda f: f.method.map(rates), value=lambda f: 100 * f.test_accuracy,
                                                                              after=lambda f: "round " + f["round"].astype(str))
    if data.empty:
        raise ValueError("none of the noise methods is in the frame")
    order = [f"round {r}" for r in sorted(data["round"].unique())]
    g = sns.relplot(data=data, x="r", y="value", hue="after", hue_order=order, palette=sns.color_palette("crest", len(order)), col="dataset",
                    kind="line", marker="o", errorbar="sd", height=3.3, aspect=1.15, facet_kws={"sharey": False})
    for dataset, ax in g.axes_dict.items():
        ax.axhline(100 * base[dataset], color="black", ls="--", lw=1)
        ax.annotate("base GNN", (1.0, 100 * base[dataset]), xycoords=("axes fraction", "data"), xytext=(-4, 3), textcoords="offset points",
                    ha="right", va="bottom", fontsize=9)
        ax.set_xticks(sorted(set(rates.values())))
    g.legend.set_title("after")
    g.set_titles("{col_name}")
    g.set_axis_labels("wrong-label rate r of the added nodes", "test accuracy (%)")
    return g
