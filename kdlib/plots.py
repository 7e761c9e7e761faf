"""One seaborn theme and the figure helpers every notebook uses."""

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


def gap_bars(gaps: pd.DataFrame, x: str, order: Sequence[str], methods: Sequence[str], palette: dict) -> sns.FacetGrid:
    """The VanillaKD paper's Fig. 1 redrawn: each method's accuracy minus vanilla KD's (pp), per ``x`` category
    (e.g. data scale), one panel per dataset; bars are means over seeds, error bars ± std, dots the seeds."""
    data = gaps[gaps.method.isin(methods) & gaps[x].isin(order)].assign(gap_pp=lambda f: 100 * f.gap)
    if data.empty:
        raise ValueError("no gaps to plot for these methods and categories")
    g = sns.catplot(data=data, x=x, y="gap_pp", hue="method", order=list(order), hue_order=list(methods), palette=palette, col="dataset",
                    kind="bar", errorbar="sd", alpha=0.8, height=3.4, aspect=1.25, sharey=False)
    for ax in g.axes.flat:
        ax.axhline(0, color="black", linewidth=0.8)
        ax.tick_params(axis="x", rotation=20)
    g.set_titles("{col_name}")
    g.set_axis_labels("", "accuracy − vanilla KD (pp)")
    return g


def accuracy_vs_steps(frame: pd.DataFrame, col: str, col_order: Sequence[str], methods: Sequence[str], palette: dict) -> sns.FacetGrid:
    """Test accuracy (%) against training steps (log scale), one line per method (mean ± std over seeds), panels
    ``dataset`` × ``col``."""
    data = frame[frame.method.isin(methods) & frame[col].isin(col_order)].assign(acc=lambda f: 100 * f.test_accuracy)
    if data.empty:
        raise ValueError("nothing to plot for these methods and panels")
    g = sns.relplot(data=data, x="step", y="acc", hue="method", hue_order=list(methods), palette=palette, row="dataset", col=col,
                    col_order=list(col_order), kind="line", marker="o", errorbar="sd", height=2.6, aspect=1.1, facet_kws={"sharey": "row"})
    steps = sorted(data.step.unique())
    for ax in g.axes.flat:
        ax.set_xscale("log")
        ax.set_xticks(steps, [str(s) for s in steps])
        ax.minorticks_off()
    g.set_titles("{row_name}, {col_name}")
    g.set_axis_labels("training steps (log scale)", "test accuracy (%)")
    return g


# Forest plots of graded verdicts (kdlib.results.grading). The section keeps its own imports so that the helpers
# above stay as they are.
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from kdlib.results.grading import CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, OUT_OF_SCOPE, REPRODUCED, Verdict  # noqa: E402

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
