"""Notebook 06 (LayerNAS): strategies x seeds x spaces x cost limits through :func:`kdlib.nas.search`.

Protocol (fixed before any run):

* **Constrained search.** For each space and each cost limit (a quantile of the space's costs), LayerNAS runs with
  its pre-registered settings (H = 8, k = 2, base = largest); its number of distinct evaluations N sets the budget
  of random search and regularized evolution run with the same seed. Each pick is the best-validation evaluated
  architecture within the limit; we compare the picks' test accuracy, and the exhaustive oracle gives the regret.
* **Front.** Without a limit, one run of each strategy at LayerNAS's N is read as a front: at a cost level c, the
  test accuracy f(c) of the best-validation architecture the run evaluated with cost <= c (the space's worst accuracy
  where it evaluated none). The **front area** (the claim's metric) is the mean of f(c) minus the worst accuracy
  over 201 evenly spaced levels between the cheapest and the dearest architecture: the hypervolume of the
  validation-selected front in (linear cost, accuracy), normalised by the cost range, with the worst accuracy as
  reference. The **quantile front score** (shown beside it) is the mean of f(c) over 20 levels at the 5th, 10th, ...,
  100th percentiles of the space's costs, which weighs the cost range by how many architectures it holds.
* **Evaluation count.** LayerNAS's budget is the whole space, so its N is what the algorithm spends, never capped
  by the bound it is checked against. N against the bound |S_1| + sum_l min(kH, #prefixes)(|S_l| - 1) <= k·H·|S|·L and against
  the size of the space, on the real spaces and on additive synthetic spaces of growing depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.nas import additive_space, coarse_bound, evaluation_bound, exhaustive, graph_space, nb201_space, proxy_cnn_space, search
from kdlib.nas.layernas import BASE_POLICY, H_BUCKETS, K_PER_BUCKET
from kdlib.nas.search import SearchResult
from kdlib.nas.space import SearchSpace
from kdlib.profiles import pick
from kdlib.results import Claim, Record, mean_std_table, pooled_comparison, to_frame

LAYERNAS = {"H": H_BUCKETS, "k": K_PER_BUCKET, "base": BASE_POLICY}
STRATEGIES = ("layernas", "random", "evolution")
LABELS = {"layernas": "LayerNAS", "random": "random search", "evolution": "regularized evolution"}
FRONT_LEVELS = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2))  # cost quantiles of the plotted fronts
AREA_LEVELS = 201  # evenly spaced cost levels of the front area


@dataclass(frozen=True)
class SpaceSetting:
    """One space of the notebook: how to build it, its cost limits (quantiles of its costs), and whether the
    unconstrained front comparison runs on it (it needs the whole space's accuracies: tables only)."""

    label: str
    build: Callable[[Cache | None], SearchSpace]
    quantiles: tuple[float, ...]
    front: bool


def settings(profile: str) -> list[SpaceSetting]:
    """The spaces of a profile (quick: NB-201, NB-Graph Cora and a 2^3 CNN space; full: + CiteSeer, PubMed, 4^4 CNN)."""
    limits = (0.25, 0.5, 0.75)
    graphs = pick(profile, {"quick": ("cora",), "full": ("cora", "citeseer", "pubmed")})
    return [
        SpaceSetting("NB-201", lambda cache: nb201_space("params", cache), limits, True),
        *[SpaceSetting(f"NB-Graph {d}", lambda cache, d=d: graph_space(d, "latency", cache), limits, True) for d in graphs],
        SpaceSetting("CNN Fashion-MNIST", lambda cache: proxy_cnn_space(profile, cache), (0.5,), False),
    ]


def _row(result: SearchResult, **extra) -> dict:
    return {"strategy": result.strategy, "seed": result.seed, "evaluations": result.n_evaluations, "cost": result.cost,
            "val_accuracy": result.reward, "test_accuracy": result.report, "found": result.arch is not None, **extra}


def run_constrained(space: SearchSpace, quantiles: Sequence[float], seeds: Sequence[int], layernas: dict | None = None,
                    progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """LayerNAS, then random search and evolution at its N, per cost limit and seed.

    Returns:
        ``runs`` (one row per limit x strategy x seed: N, the pick's cost, validation and test accuracy, regret),
        ``traces`` (best test accuracy so far after each evaluation) and ``oracles`` (per limit).
    """
    params = {**LAYERNAS, **(layernas or {})}
    runs, traces, oracles = [], [], []
    for q in quantiles:
        limit = space.cost_quantile(q)
        oracle = exhaustive(space, limit)
        oracles.append({"space": space.name, "quantile": q, "cost_limit": limit, **{k: v for k, v in oracle.items() if k != "arch"},
                        "oracle_arch": space.describe(oracle["arch"])})
        for seed in tqdm(seeds, desc=f"{space.name} q={q}", disable=not progress, leave=False):
            first = search(space, "layernas", space.size, limit, seed, **params)
            if first.n_evaluations == 0:
                raise RuntimeError(f"LayerNAS evaluated nothing on {space.name} at cost limit {limit} ({params})")
            results = [first] + [search(space, s, first.n_evaluations, limit, seed) for s in STRATEGIES[1:]]
            for result in results:
                runs.append(_row(result, space=space.name, quantile=q, cost_limit=limit, oracle_test=oracle["report"],
                                 regret=oracle["report"] - result.report, feasible=bool(result.cost <= limit)))
                trace = result.trace()
                traces.append(pd.DataFrame({"space": space.name, "quantile": q, "strategy": result.strategy, "seed": seed,
                                            "evaluation": np.arange(1, len(trace) + 1), "best_test_accuracy": trace}))
    return pd.DataFrame(runs), pd.concat(traces, ignore_index=True), pd.DataFrame(oracles)


def front_levels(space: SearchSpace) -> np.ndarray:
    return np.array([space.cost_quantile(q) for q in FRONT_LEVELS])


def run_front(space: SearchSpace, seeds: Sequence[int], layernas: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The unconstrained runs read as accuracy-vs-cost fronts.

    Returns:
        ``points`` (space, strategy, seed, level, cost level, test accuracy at that level; strategy "oracle" is the
        exhaustive front) and ``scores`` (front area, quantile front score and N per strategy and seed).
    """
    params = {**LAYERNAS, **(layernas or {})}
    levels = front_levels(space)
    archs = space.all_archs()
    costs = np.array([space.cost(a) for a in archs])
    evaluations = [space.evaluate(a) for a in archs]
    rewards, reports = np.array([e.reward for e in evaluations]), np.array([e.report for e in evaluations])
    floor = float(reports.min())
    linear = np.linspace(space.min_cost, space.max_cost, AREA_LEVELS)
    points = []
    for q, c in zip(FRONT_LEVELS, levels):  # the exhaustive front: best validation under each level
        ok = np.flatnonzero(costs <= c)
        points.append({"space": space.name, "strategy": "oracle", "seed": -1, "level": q, "cost_level": c,
                       "test_accuracy": float(reports[ok[np.argmax(rewards[ok])]])})
    scores = []
    for seed in seeds:
        first = search(space, "layernas", space.size, None, seed, **params)
        for result in [first] + [search(space, s, first.n_evaluations, None, seed) for s in STRATEGIES[1:]]:
            front = result.front(levels)
            points += [{"space": space.name, "strategy": result.strategy, "seed": seed, "level": q, "cost_level": c, "test_accuracy": a}
                       for q, c, a in zip(FRONT_LEVELS, levels, front)]
            area = np.nan_to_num(result.front(linear), nan=floor) - floor
            scores.append({"space": space.name, "strategy": result.strategy, "seed": seed, "evaluations": result.n_evaluations,
                           "front_area": float(area.mean()), "front_quantile_score": float(np.mean(np.nan_to_num(front, nan=floor)))})
    return pd.DataFrame(points), pd.DataFrame(scores)


def evaluation_counts(depths: Sequence[int], n_options: int, seeds: Sequence[int], quantile: float = 0.5) -> pd.DataFrame:
    """LayerNAS's N on additive spaces of growing depth L (|S| = ``n_options``), against its bounds and |S|^L."""
    rows = []
    for depth in depths:
        for seed in seeds:
            space = additive_space(depth, n_options, seed=seed)
            result = search(space, "layernas", space.size, space.cost_quantile(quantile), seed, **LAYERNAS)
            rows.append({"layers": depth, "seed": seed, "space_size": space.size, "evaluations": result.n_evaluations,
                         "bound": evaluation_bound(space), "kH|S|L": coarse_bound(space),
                         "optimum_found": bool(np.isclose(result.report, exhaustive(space, result.cost_limit)["report"]))})
    return pd.DataFrame(rows)


def count_table(runs: pd.DataFrame, spaces: dict[str, SearchSpace]) -> pd.DataFrame:
    """Per real space: LayerNAS's N (range over limits and seeds), its bounds, and the size of the space."""
    layernas = runs[runs.strategy == "layernas"]
    rows = []
    for name, group in layernas.groupby("space", sort=False):
        space = spaces[name]
        rows.append({"space": name, "L": len(space.layers), "|S|": "x".join(str(len(layer.options)) for layer in space.layers),
                     "architectures": space.size, "N min": int(group.evaluations.min()), "N max": int(group.evaluations.max()),
                     "bound": evaluation_bound(space), "kH|S|L": coarse_bound(space)})
    return pd.DataFrame(rows).set_index("space")


def ablation(space: SearchSpace, quantiles: Sequence[float], seeds: Sequence[int], ks: Sequence[int] = (1, 2, 3),
             bases: Sequence[str] = ("largest", "cheapest")) -> pd.DataFrame:
    """Sensitivity of LayerNAS to k and the base policy (H fixed), each variant against the baselines at its own N.
    Shown, not used to choose the settings of the claims."""
    rows = []
    for k in ks:
        for base in bases:
            runs, _, _ = run_constrained(space, quantiles, seeds, {"k": k, "base": base}, progress=False)
            for (q, strategy), group in runs.groupby(["quantile", "strategy"]):
                rows.append({"space": space.name, "k": k, "base": base, "quantile": q, "strategy": strategy,
                             "evaluations": group.evaluations.mean(), "test_accuracy": group.test_accuracy.mean()})
    return pd.DataFrame(rows)


def to_records(runs: pd.DataFrame, scores: pd.DataFrame) -> list[Record]:
    """Constrained runs (experiment = "space @ q") and front scores (experiment = "space front") as Records."""
    records = []
    for row in runs.itertuples():
        experiment = experiment_name(row.space, row.quantile)
        for metric in ("test_accuracy", "val_accuracy", "evaluations", "cost", "regret"):
            records.append(Record(experiment, LABELS[row.strategy], row.space, int(row.seed), metric, float(getattr(row, metric))))
    for row in scores.itertuples():
        for metric in ("front_area", "front_quantile_score", "evaluations"):
            records.append(Record(f"{row.space} front", LABELS[row.strategy], row.space, int(row.seed), metric, float(getattr(row, metric))))
    return records


def experiments(records: Sequence[Record], kind: str, spaces: Sequence[str] | None = None) -> list[str]:
    """Experiment names of ``kind`` ("constrained" or "front"), optionally restricted to ``spaces``."""
    names = dict.fromkeys(r.experiment for r in records if (r.experiment.endswith(" front")) == (kind == "front"))
    return [n for n in names if spaces is None or any(n.startswith(s + " ") for s in spaces)]


def build_claims(records: Sequence[Record], runs: pd.DataFrame, counts: pd.DataFrame, real_counts: pd.DataFrame) -> list[Claim]:
    """The three claims of the issue, each checked from the measured numbers (pooled paired 95% intervals)."""
    constrained = experiments(records, "constrained")
    front = experiments(records, "front")
    ln, rs, re = LABELS["layernas"], LABELS["random"], LABELS["evolution"]
    vs_rs, vs_re = pooled_comparison(records, ln, rs, constrained), pooled_comparison(records, ln, re, constrained)
    f_rs = pooled_comparison(records, ln, rs, front, metric="front_area")
    f_re = pooled_comparison(records, ln, re, front, metric="front_area")
    layernas_runs = runs[runs.strategy == "layernas"]
    within = bool((counts.evaluations <= counts.bound).all() and (real_counts["N max"] <= real_counts["bound"]).all())
    feasible = bool(layernas_runs.feasible.all() and layernas_runs.found.all())
    grow = counts.groupby("layers").agg(n=("evaluations", "mean"), size=("space_size", "first"))
    return [
        Claim("better-under-constraint",
              "Under a cost limit, LayerNAS's pick beats random search and regularized evolution at the same number of evaluations "
              "(test accuracy, pooled paired 95% CIs above 0)",
              "superior to strong baselines on NATS-Bench and MobileNet spaces (no per-baseline numbers readable)",
              f"vs random {vs_rs.points()}, vs evolution {vs_re.points()}, {vs_rs.n} pairs", bool(vs_rs.ci_low > 0 and vs_re.ci_low > 0)),
        Claim("polynomial-evaluations",
              "LayerNAS's evaluations stay within k·H·|S|·L-type bounds, not the size of the space, and its pick is always feasible",
              "O(H·|S|·L) evaluations",
              f"N ≤ bound in every run: {within}; synthetic L={grow.index.min()}→{grow.index.max()}: N {grow.n.iloc[0]:.0f}→{grow.n.iloc[-1]:.0f} "
              f"while |S|^L {grow['size'].iloc[0]:,}→{grow['size'].iloc[-1]:,}; feasible picks: {feasible}", within and feasible),
        Claim("better-front",
              "One unconstrained LayerNAS run traces a better accuracy-vs-cost front than random search and evolution at its N "
              "(front area, pooled paired 95% CIs above 0)",
              "one search yields models along the accuracy-cost trade-off",
              f"vs random {f_rs.points()}, vs evolution {f_re.points()}, {f_rs.n} pairs", bool(f_rs.ci_low > 0 and f_re.ci_low > 0)),
    ]


ABLATION_SPACES = {"quick": ("NB-201",), "full": ("NB-201", "NB-Graph cora")}
ABLATION_QUANTILES = {"quick": (0.5,), "full": (0.25, 0.5, 0.75)}
DEPTHS = {"quick": (2, 3, 4, 5, 6), "full": (2, 3, 4, 5, 6, 7, 8)}
PAPER = {  # what the notes could verify (06_layernas.md §5); nothing here is comparable number for number
    "NB-201": "NATS-Bench TSS is one of the paper's spaces: 'consistently superior' to baselines; no per-baseline numbers readable",
    "NB-Graph": "not in the paper",
    "CNN": "MobileNetV2/V3 spaces on ImageNet: up to 4.9% better top-1 than state-of-the-art alternatives (blog)",
}


def space_summary(spaces: Sequence[SearchSpace]) -> pd.DataFrame:
    """Layers, options, sizes and cost ranges of the spaces (no evaluation: the CNN space is not trained here)."""
    rows = []
    for space in spaces:
        distinct = len({space.identity(a) for a in space.all_archs()})
        rows.append({"space": space.name, "layers L": len(space.layers), "options per layer": "x".join(str(len(l.options)) for l in space.layers),
                     "combinations": int(np.prod(space.shape)), "distinct architectures": distinct, "cost": space.cost_name,
                     "min cost": space.min_cost, "max cost": space.max_cost, "base (largest)": space.describe(space.base_arch("largest")),
                     "description": space.description})
    return pd.DataFrame(rows).set_index("space")


def space_points(space: SearchSpace, cost_limit: float | None = None) -> pd.DataFrame:
    """Cost and test accuracy of every valid architecture (within ``cost_limit``), one row per distinct key.

    For the CNN space call it only on architectures already evaluated (e.g. within the limit after the oracle ran).
    """
    seen, rows = set(), []
    for arch in space.all_archs(np.inf if cost_limit is None else cost_limit):
        identity = space.identity(arch)
        if identity not in seen:
            seen.add(identity)
            rows.append({"space": space.name, "cost": space.cost(arch), "test_accuracy": space.evaluate(arch).report})
    return pd.DataFrame(rows)


def paper_vs_ours(runs: pd.DataFrame, oracles: pd.DataFrame, quantile: float = 0.5) -> pd.DataFrame:
    """At the median cost limit: the paper's statement and our mean test accuracy (%) of each strategy's pick and the oracle."""
    rows = []
    at = runs[np.isclose(runs["quantile"], quantile)]
    for name, group in at.groupby("space", sort=False):
        means = group.groupby("strategy").test_accuracy.mean() * 100
        oracle = oracles[(oracles.space == name) & np.isclose(oracles["quantile"], quantile)].report.iloc[0] * 100
        paper = next((text for key, text in PAPER.items() if name.startswith(key)), "")
        rows.append({"space": name, "paper": paper, "N (LayerNAS)": f"{group[group.strategy == 'layernas'].evaluations.mean():.0f}",
                     **{LABELS[s]: f"{means[s]:.2f}" for s in STRATEGIES}, "oracle": f"{oracle:.2f}"})
    return pd.DataFrame(rows).set_index("space")


NOTES_NB201_BEST = 0.9407  # the notes' "max 94.07" (DATA.md §6): a reference to check the table against, not a result


def experiment_name(space: str, quantile: float) -> str:
    return f"{space} @ q{int(round(100 * quantile))}"


def results_table(runs: pd.DataFrame, oracles: pd.DataFrame, records: Sequence[Record]) -> pd.DataFrame:
    """Per space and cost limit: N, each strategy's pick test accuracy (%, mean ± std over seeds), the oracle, and how
    often each strategy returned the oracle's accuracy."""
    frame = to_frame(records)
    accuracy = mean_std_table(frame[frame.metric == "test_accuracy"], index="experiment", columns="method")
    rows = []
    for (space, q), group in runs.groupby(["space", "quantile"], sort=False):
        oracle = oracles[(oracles.space == space) & np.isclose(oracles["quantile"], q)].iloc[0]
        experiment = experiment_name(space, q)
        row = {"experiment": experiment, "cost limit": f"{oracle.cost_limit:.4g}", "feasible": int(oracle.n_feasible),
               "N": f"{group[group.strategy == 'layernas'].evaluations.mean():.0f}",
               **{LABELS[s]: accuracy.loc[experiment, LABELS[s]] for s in STRATEGIES}, "oracle": f"{100 * oracle.report:.2f}"}
        hits = group.assign(hit=np.isclose(group.test_accuracy, oracle.report)).groupby("strategy").hit.agg(["sum", "count"])
        row["runs that found the oracle"] = ", ".join(f"{short} {int(hits.loc[s, 'sum'])}/{int(hits.loc[s, 'count'])}"
                                                      for short, s in zip(("LN", "RS", "RE"), STRATEGIES))
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def per_space_differences(records: Sequence[Record]) -> pd.DataFrame:
    """LayerNAS minus each baseline (pp, pooled paired 95% CI) per space and over all spaces, for the constrained picks'
    test accuracy and for the front area and quantile front score."""
    ln = LABELS["layernas"]
    spaces = list(dict.fromkeys(r.setting for r in records))
    rows = {}
    for label, subset in [*[(s, [s]) for s in spaces], ("all spaces", None)]:
        row = {}
        for kind, metric in (("constrained", "test_accuracy"), ("front", "front_area"), ("front", "front_quantile_score")):
            names = experiments(records, kind, subset)
            for baseline in ("random", "evolution"):
                if names:
                    c = pooled_comparison(records, ln, LABELS[baseline], names, metric=metric)
                    measure = {"test_accuracy": "pick", "front_area": "front area", "front_quantile_score": "quantile front"}[metric]
                    row[f"{measure}: {ln} − {LABELS[baseline]}"] = f"{c.points()} (n={c.n})"
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index").fillna("")


def ablation_table(ablation_runs: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy (%) over limits and seeds per LayerNAS variant, with the baselines at each variant's N."""
    table = ablation_runs.groupby(["space", "k", "base", "strategy"]).agg(acc=("test_accuracy", "mean"), n=("evaluations", "mean")).reset_index()
    wide = table.pivot_table(index=["space", "k", "base"], columns="strategy", values="acc").mul(100).round(2)
    wide = wide.rename(columns=LABELS)[[LABELS[s] for s in STRATEGIES]]
    wide.insert(0, "N", table[table.strategy == "layernas"].set_index(["space", "k", "base"]).n.round(0))
    return wide


def front_table(records: Sequence[Record]) -> pd.DataFrame:
    """Front area (pp above the space's worst accuracy) and quantile front score (%) per space and strategy, mean ± std."""
    frame = to_frame(records)
    order = [LABELS[s] for s in STRATEGIES]
    return pd.concat({title: mean_std_table(frame[frame.metric == metric], index="setting", columns="method")[order]
                      for metric, title in (("front_area", "front area (pp)"), ("front_quantile_score", "quantile front score (%)"))}, axis=1)


def table_versions() -> dict[str, str]:
    """Versions of the wheels that ship the benchmark tables (for the results file)."""
    from importlib.metadata import version

    return {package: version(package) for package in ("analog-nasbench", "nas-bench-graph")}


def front_figure(spaces: dict[str, SearchSpace], panels: Sequence[str], runs: pd.DataFrame, oracles: pd.DataFrame,
                 front_points: pd.DataFrame, colours: dict) -> plt.Figure:
    """Accuracy against cost, one panel per space: every architecture (grey; for a trained space only those within
    its largest limit), the exhaustive front (black steps), each strategy's mean unconstrained front (coloured steps)
    and constrained picks (dots), and the cost limits (dotted)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, name in zip(axes[0], panels):
        space, fronts, picks = spaces[name], front_points[front_points.space == name], runs[runs.space == name]
        cloud = space_points(space, None if len(fronts) else oracles[oracles.space == name].cost_limit.max())
        ax.scatter(cloud.cost, 100 * cloud.test_accuracy, s=2, color="0.8", rasterized=True, label="all architectures")
        if len(fronts):
            oracle = fronts[fronts.strategy == "oracle"]
            ax.step(oracle.cost_level, 100 * oracle.test_accuracy, where="post", color="black", lw=1.2, label="exhaustive front")
            for strategy in STRATEGIES:
                mean = fronts[fronts.strategy == strategy].groupby("cost_level").test_accuracy.mean()
                ax.step(mean.index, 100 * mean, where="post", color=colours[LABELS[strategy]], lw=1.2, alpha=0.9)
        for strategy in STRATEGIES:
            chosen = picks[picks.strategy == strategy]
            ax.scatter(chosen.cost, 100 * chosen.test_accuracy, s=28, color=colours[LABELS[strategy]], edgecolor="black", lw=0.4,
                       label=LABELS[strategy], zorder=3)
        for limit in picks.cost_limit.unique():
            ax.axvline(limit, color="0.5", ls=":", lw=1)
        ax.set_ylim(np.percentile(100 * cloud.test_accuracy, 20 if len(fronts) else 0), 100 * cloud.test_accuracy.max() + 0.5)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        ax.set_title(name)
        ax.set_xlabel(space.cost_name)
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    return fig
