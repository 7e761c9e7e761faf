"""Notebook 03 (weighted distillation): how well each weighting separates the teacher's right labels from its wrong ones."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

COLOURS = {"right": "tab:green", "wrong": "tab:red"}


def weights_right_vs_wrong(separation: pd.DataFrame) -> plt.Figure:
    """Per setting and weighting: the mean weight on right and on wrong teacher labels (a segment from one to the
    other) and the AUC of the weight for right vs wrong labels (0.5: a constant weight).

    ``separation`` is :func:`kdlib.experiments.weighted.weight_separation`'s table (index dataset, n_labelled, weighting).
    """
    frame = separation.reset_index()
    if frame.empty:
        raise ValueError("no weightings to plot")
    frame["setting"] = frame.dataset + " |L|=" + frame.n_labelled.astype(str)
    weightings = list(dict.fromkeys(frame.weighting))
    settings = list(dict.fromkeys(frame.setting))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.55 * len(settings) * len(weightings) + 1.5), sharey=True)
    rows = frame.set_index(["setting", "weighting"])
    labels = [f"{s} · {w}" for s in settings for w in weightings]
    for y, (setting, weighting) in enumerate((s, w) for s in settings for w in weightings):
        if (setting, weighting) not in rows.index:
            continue
        row = rows.loc[(setting, weighting)]
        on_right, on_wrong = row["mean weight, teacher right"], row["mean weight, teacher wrong"]
        left.plot([on_wrong, on_right], [y, y], color="grey", lw=1)
        left.scatter([on_right], [y], color=COLOURS["right"], label="teacher right" if y == 0 else None, zorder=3)
        left.scatter([on_wrong], [y], color=COLOURS["wrong"], label="teacher wrong" if y == 0 else None, zorder=3)
        right.barh(y, row["AUC (right vs wrong)"] - 0.5, left=0.5, color="tab:blue", alpha=0.7)
    left.set(yticks=range(len(labels)), yticklabels=labels, xlabel="mean weight on the teacher's label", xlim=(-0.05, 1.05))
    left.invert_yaxis()
    left.legend(loc="lower left", fontsize=8)
    right.axvline(0.5, color="grey", lw=0.8)
    right.set(xlabel="AUC of the weight, right vs wrong labels", xlim=(0.0, 1.0))
    fig.tight_layout()
    return fig
