"""Forest plots of graded verdicts (kdlib.results.grading)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from kdlib.plots.common import PALETTE
from kdlib.results.grading import CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, OUT_OF_SCOPE, REPRODUCED, Verdict


_COLOURS = sns.color_palette(PALETTE)
VERDICT_COLOURS = {REPRODUCED: _COLOURS[2], CONTRADICTED: _COLOURS[3], INCONCLUSIVE: _COLOURS[0], NOT_TESTABLE: "0.45", OUT_OF_SCOPE: "0.65"}


def forest(verdicts: Sequence[Verdict], ax: plt.Axes | None = None, controls: bool = False) -> plt.Figure:
    """A forest plot of a notebook's graded claims: one row per paper claim (and, with ``controls``, one per control
    in a second panel), each with its estimate and (Holm-adjusted) interval in the claim's unit, the SESOI band
    (shaded from -SESOI to +SESOI), the paper's value (a diamond) and the verdict, in colour and in words. Rows are
    split into panels by kind and unit; claims without an interval (deterministic, not testable, out of scope) show
    their verdict only.

    Raises:
        ValueError: no claim to plot, or ``ax`` given for more than one panel.
    """
    kinds = ("paper", "control") if controls else ("paper",)
    panels = [(kind, unit) for kind in kinds for unit in dict.fromkeys(v.declaration.unit for v in verdicts if v.declaration.kind == kind)]
    if not panels:
        raise ValueError("no claim to plot")
    if ax is not None and len(panels) > 1:
        raise ValueError(f"{len(panels)} panels ({panels}) do not fit one ax: pass ax=None")
    rows = {panel: [v for v in verdicts if (v.declaration.kind, v.declaration.unit) == panel] for panel in panels}
    if ax is None:
        heights = [len(r) + 1 for r in rows.values()]
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.42 * sum(heights) + 1.0), height_ratios=heights, squeeze=False, layout="constrained")
        axes = list(axes[:, 0])
    else:
        fig, axes = ax.figure, [ax]
    for axis, ((kind, unit), panel) in zip(axes, rows.items()):
        _forest_panel(axis, panel, f"{panel[0].notebook}: {'paper claims' if kind == 'paper' else 'controls'}"
                      + (" (provisional: declared after the data)" if panel[0].provisional else ""), unit)
    handles = [Line2D([], [], marker="o", color="black", ls="-", label="ours, interval"), Patch(facecolor="0.88", label="−SESOI to +SESOI"),
               Line2D([], [], marker="D", mfc="white", mec="black", ls="", label="paper")]
    if ax is None:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False, fontsize=9)
    else:
        ax.legend(handles=handles, loc="best", fontsize=8)
    return fig


def _forest_label(verdict: Verdict) -> str:
    """The claim id, the weakest part of a conjunction (whose interval is drawn) and a mark for claims of a negative sign."""
    weakest = [p.label for p in verdict.part_results if (p.estimate, p.ci_low) == (verdict.estimate, verdict.ci_low)]
    return verdict.declaration.id + (f" (weakest: {weakest[0]})" if weakest else "") + (" (↓ better)" if verdict.declaration.direction == -1 else "")


def _forest_panel(ax: plt.Axes, verdicts: Sequence[Verdict], title: str, unit: str) -> None:
    ys = range(len(verdicts))
    for y, v in zip(ys, verdicts):
        colour = VERDICT_COLOURS[v.verdict]
        if v.sesoi:
            ax.add_patch(Rectangle((-v.sesoi, y - 0.38), 2 * v.sesoi, 0.76, facecolor="0.88", edgecolor="none", zorder=0))
        if v.estimate is not None:
            ax.errorbar(v.estimate, y, xerr=[[v.estimate - v.ci_low], [v.ci_high - v.estimate]], fmt="o", color=colour, capsize=3, zorder=3)
        else:
            ax.text(0.5, y, "no interval", transform=ax.get_yaxis_transform(), ha="center", va="center", color="0.4", fontsize=8)
        if v.declaration.paper_effect is not None:
            ax.plot(v.declaration.paper_effect, y, marker="D", mfc="white", mec="black", ls="", zorder=4)
        level = f" ({100 * v.confidence:.4g} %)" if v.confidence is not None else ""
        ax.text(1.01, y, v.verdict + level, transform=ax.get_yaxis_transform(), va="center", color=colour, fontsize=9)
    ax.set_yticks(list(ys), [_forest_label(v) for v in verdicts], fontsize=9)
    ax.set_ylim(len(verdicts) - 0.5, -0.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"estimate and CI ({unit})")
    ax.set_title(title, loc="left", fontsize=10)
