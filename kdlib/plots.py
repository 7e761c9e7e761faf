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


# ---------------------------------------------------------------------------------------------------------------------
# Notebook 07 (knowledge distillation as partial variance reduction): suboptimality curves, the noise floor against
# lambda, sigma^2(lambda) at the optimum, and the deep-linear / MLP diagnostics.
# ---------------------------------------------------------------------------------------------------------------------
import numpy as np  # noqa: E402


def suboptimality_curves(frame: pd.DataFrame, teachers: Sequence[str], methods: Sequence[str], baselines: Sequence[str]) -> plt.Figure:
    """``F(x_t) - F*`` against epochs (log y), one panel per teacher: ``methods`` with that teacher and the teacher-free
    ``baselines`` (SGD, SVRG) in every panel; lines are geometric means over replicates.

    ``frame`` has one row per (seed, teacher, method) with list columns ``epochs`` and ``suboptimality``.
    """
    if frame.empty:
        raise ValueError("nothing to plot")
    grid = [m for m in methods if m.startswith("KD-grad lam=")]  # the lambda grid: greys, darker for a larger lambda
    palette = {**method_palette([*baselines, *[m for m in methods if m not in grid]]), **dict(zip(grid, sns.color_palette("Greys", len(grid) + 1)[1:]))}
    fig, axes = plt.subplots(1, len(teachers), figsize=(3.3 * len(teachers), 3.4), sharey=True, squeeze=False, layout="constrained")
    for ax, teacher in zip(axes[0], teachers):
        chosen = frame[(frame.teacher == teacher) & frame.method.isin(methods) | frame.method.isin(baselines)]
        for method, rows in chosen.groupby("method", sort=False):
            curves = np.log10(np.maximum(np.array(rows.suboptimality.tolist()), 1e-16))
            ax.plot(rows.epochs.iloc[0], 10 ** curves.mean(0), color=palette[method], lw=1.4, ls="--" if method in baselines else "-", label=method)
        ax.set_yscale("log")
        ax.set_title(f"teacher: {teacher}", fontsize=10)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("F(x) − F* (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(5, len(labels)), frameon=False, fontsize=8)
    return fig


def floor_vs_lambda(curve: pd.DataFrame, lambda_star: dict[str, float], teachers: Sequence[str]) -> plt.Axes:
    """The noise floor (log10, mean ± sd over replicates) against lambda (lambda = 0 is SGD), one line per teacher,
    with each teacher's lambda* (a vertical tick) and its empirical best lambda (a star)."""
    if curve.empty:
        raise ValueError("nothing to plot")
    palette = method_palette(list(teachers))
    ax = plt.subplots(figsize=(6.5, 4))[1]
    for teacher in teachers:
        rows = curve[curve.teacher == teacher].groupby("lam").log10_floor.agg(["mean", "std"]).reset_index()
        colour = palette[teacher]
        ax.errorbar(rows.lam, rows["mean"], yerr=rows["std"].fillna(0), color=colour, marker="o", ms=4, capsize=2, label=teacher)
        best = rows.loc[rows["mean"].idxmin()]
        ax.plot(best.lam, best["mean"], marker="*", ms=14, color=colour, mec="black", ls="")
        ax.axvline(lambda_star[teacher], color=colour, ls=":", lw=1.2)
    ax.set(xlabel="λ (0 = SGD); dotted: λ* at the optimum; star: the best λ", ylabel="noise floor log10(F − F*)",
           title="Noise floor against the distillation weight")
    ax.legend(fontsize=8, title="teacher", title_fontsize=8)
    return ax


def sigma2_vs_lambda(curves: pd.DataFrame, teachers: Sequence[str]) -> plt.Axes:
    """sigma^2(lambda) / sigma^2(0) at the optimum per teacher: the distillation gradient (solid) and with the
    full-gradient correction (dashed), each minimum lambda* marked."""
    if curves.empty:
        raise ValueError("nothing to plot")
    palette = method_palette(list(teachers))
    ax = plt.subplots(figsize=(6.5, 4))[1]
    for (teacher, variant), rows in curves[curves.teacher.isin(teachers)].groupby(["teacher", "variant"], sort=False):
        base = rows.sigma2.iloc[0]
        ls = "-" if variant == "distillation gradient" else "--"
        ax.plot(rows["lambda"], rows.sigma2 / base, color=palette[teacher], ls=ls, label=f"{teacher}, {variant}")
        star = rows["lambda*"].iloc[0]
        if 0 <= star <= rows["lambda"].max():
            nearest = rows.iloc[(rows["lambda"] - star).abs().argmin()]
            ax.plot(star, nearest.sigma2 / base, marker="v", color=palette[teacher], ls="")
    ax.set(xlabel="λ", ylabel="σ²(λ) / σ²(0) at the optimum", ylim=(0, 1.5), title="Exact noise at the optimum (triangles: λ*)")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    return ax


def net_diagnostics(frames: dict[str, pd.DataFrame], threshold: float | None = None) -> plt.Figure:
    """Per task (E2 deep linear, E3 MLP), against epochs: the cosine between the KD gradient and its surrogate (mean ±
    sd over replicates; ``threshold`` drawn as a line), the training loss and the gradient noise (log y) of SGD and KD
    at their iterates (means over replicates)."""
    if not frames:
        raise ValueError("nothing to plot")
    fig, axes = plt.subplots(3, len(frames), figsize=(4.2 * len(frames), 8.5), squeeze=False, layout="constrained")
    colours = sns.color_palette(PALETTE, 2)
    for column, (task, frame) in enumerate(frames.items()):
        cos = frame.dropna(subset=["cosine_mean"]).groupby("epoch").cosine_mean.agg(["mean", "std"])
        axes[0][column].errorbar(cos.index, cos["mean"], yerr=cos["std"].fillna(0), marker="o", capsize=3, color=colours[0])
        if threshold is not None:
            axes[0][column].axhline(threshold, color="0.4", ls=":", lw=1)
        axes[0][column].set(title=task, ylabel="cos(KD grad, surrogate)", ylim=(0, 1.02))
        for row, (metric, label) in enumerate((("train_loss", "training loss (CE)"), ("noise", "per-example gradient variance")), start=1):
            for colour, method in zip(colours, ("sgd", "kd")):
                curve = frame.groupby("epoch")[f"{metric}_{method}"].mean()
                axes[row][column].plot(curve.index, curve.values, marker="o", color=colour, label=method.upper())
            axes[row][column].set(yscale="log", ylabel=label)
            axes[row][column].legend(fontsize=8)
        for ax in axes[:, column]:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# Notebook 06 (LayerNAS): accuracy-vs-cost fronts and best-so-far curves.
# ---------------------------------------------------------------------------------------------------------------------
import textwrap  # noqa: E402

import numpy as np  # noqa: E402,F811


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


# ---------------------------------------------------------------------------------------------------------------------
# Notebook 08 (noisy pseudo-labelling on graphs): test and pseudo-label accuracy per round, accuracy against the
# wrong-label rate. Frames come from kdlib.experiments.pseudo_label: one row per dataset x method x replicate x round,
# round 0 the base GNN.
# ---------------------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------------------
# Notebook 10 (L2T-DLN): test accuracy against student steps per method, the learned loss's shape over the 1-vs-1
# inputs, and the teachers' step sizes. Frames come from kdlib.experiments.l2t_dln (curves(), the grid's rows).
# ---------------------------------------------------------------------------------------------------------------------
import textwrap  # noqa: E402  (this section's own imports)

import numpy as np  # noqa: E402

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


# ---------------------------------------------------------------------------------------------------------------------
# Notebook 09 (KD-Zero): the searches' best proxy fitness against evaluations, and final accuracy per method and pair.
# ---------------------------------------------------------------------------------------------------------------------
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
