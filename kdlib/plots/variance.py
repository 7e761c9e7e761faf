"""Notebook 07 (knowledge distillation as partial variance reduction): suboptimality curves, the noise floor against
lambda, sigma^2(lambda) at the optimum, and the deep-linear / MLP diagnostics."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from kdlib.plots.common import PALETTE, method_palette


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
