"""Notebook 04 (RAD): every strategy's paired difference to a baseline strategy against the number of teacher queries."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats


def paired_by_round(rounds: pd.DataFrame, baseline: str, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per (task, strategy, queries): the mean over seeds of ``metric`` minus the baseline's on the same seed (pp), its
    95 % t-interval and the number of seeds (rounds 1..R; the shared round 0 is left out)."""
    queried = rounds[rounds["round"] > 0]
    wide = queried.pivot_table(index=["task", "queries", "seed"], columns="strategy", values=metric)
    if baseline not in wide:
        raise ValueError(f"the baseline {baseline!r} is not among the strategies {list(wide.columns)}")
    diffs = (100 * wide.drop(columns=baseline).sub(wide[baseline], axis=0)).stack().rename("diff").reset_index()
    out = diffs.groupby(["task", "strategy", "queries"])["diff"].agg(["mean", "sem", "count"]).reset_index()
    half = out["sem"].fillna(0) * stats.t.ppf(0.975, np.maximum(out["count"] - 1, 1))
    return out.assign(ci_low=out["mean"] - half, ci_high=out["mean"] + half)


def differences_vs_queries(rounds: pd.DataFrame, strategies: Sequence[str], palette: dict, baseline: str = "margin",
                           metric: str = "test_accuracy") -> plt.Figure:
    """One panel per task: each strategy's paired difference to ``baseline`` (pp, mean and 95 % interval over seeds)
    against the number of teacher queries, the strategies side by side at each number of queries."""
    table = paired_by_round(rounds, baseline, metric)
    tasks = list(dict.fromkeys(rounds.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = table[table.task == task]
        shown = [s for s in strategies if s in set(rows.strategy)]
        step = float(np.diff(np.unique(rows.queries)).min()) if rows.queries.nunique() > 1 else 1.0
        for k, strategy in enumerate(shown):
            line = rows[rows.strategy == strategy].sort_values("queries")
            x = line.queries + step * 0.6 * ((k + 0.5) / len(shown) - 0.5)  # dodge the strategies within a round
            ax.errorbar(x, line["mean"], yerr=[line["mean"] - line.ci_low, line.ci_high - line["mean"]], fmt="o-", ms=4, lw=1.2, capsize=2,
                        color=palette[strategy], label=strategy)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"{task} ({int(rows['count'].max())} seeds)")
        ax.set_xlabel("teacher queries")
        ax.set_ylabel(f"{metric.replace('_', ' ')} − {baseline} (pp)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4), frameon=False)
    fig.tight_layout()
    return fig
