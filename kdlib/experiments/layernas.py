"""Notebook 06 (LayerNAS): every search run is one grid cell; the protocol is fixed here, before the run.

* **Spaces** (:func:`build_space`, rebuilt from the cache inside every cell): NB-201 (parameters), NAS-Bench-Graph
  Cora / CiteSeer / PubMed (latency), and a MobileNetV2-like CNN space on Fashion-MNIST (MACs), whose architectures
  are trained by a short proxy run on first evaluation and cached.
* **Settings.** LayerNAS's two open choices, the base policy (``largest``, ``cheapest``) and the bucketing
  (``equal-width``, ``equal-count``), all four combinations on every space, limit and seed. The primary one is
  fixed by the rule of :mod:`kdlib.claims.layernas` on NAS-Bench-Graph Cora (then left out of the claims); the
  other three form the sensitivity table.
* **Constrained search.** For each space, cost limit (a quantile of the space's costs), setting and seed: LayerNAS
  with the whole space as budget (its N is what the algorithm spends); its N distinct evaluations and its F
  evaluations within the limit set the budgets of random search and regularized evolution run with the same seed:
  **at N** (the paper's equal count; primary) and **at F** (an equal *useful* budget; second). Each pick is the
  best-validation evaluated architecture within the limit; we compare the picks' test accuracy, and the exhaustive
  oracle gives the regret.
* **Front** (tables only: the exhaustive front needs every architecture's accuracy). Without a limit, one run of each
  strategy at LayerNAS's N is read as a front f(c): the test accuracy of the best-validation architecture the run
  evaluated with cost <= c (the space's worst accuracy where it evaluated none). **Front area**: the mean of f(c)
  minus the worst accuracy over 201 evenly spaced cost levels from the cheapest to the dearest architecture; the
  **quantile front score** (shown beside it) is the mean of f(c) at the 5th, 10th, ..., 100th cost percentiles.
* **Evaluation count.** N against the bound |S_1| + sum_l min(kH, #prefixes)(|S_l| - 1) <= k·H·|S|·L on the real
  spaces and on additive synthetic spaces of growing depth, for every setting.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from kdlib.data import data_version
from kdlib.grid import run_grid
from kdlib.nas import additive_space, coarse_bound, evaluation_bound, exhaustive, graph_space, nb201_space, proxy_cnn_space, search
from kdlib.nas.layernas import BUCKETINGS, H_BUCKETS, K_PER_BUCKET
from kdlib.nas.proxy_cnn import PROXY_VERSION, trained_architectures
from kdlib.nas.proxy_cnn import SETTINGS as PROXY_SETTINGS
from kdlib.nas.search import SearchResult
from kdlib.nas.space import BASE_POLICIES, SearchSpace
from kdlib.profiles import pick
from kdlib.results import Estimate, Record, mean_std_table, paired_estimates, pooled, to_frame

PROTOCOL_VERSION = 3  # bump when a choice that the cells' arguments do not name changes
EXPERIMENT = "layernas-search"
SETTINGS = tuple((base, bucketing) for base in BASE_POLICIES for bucketing in BUCKETINGS)  # (largest, equal-width) first: the previous regime's
BUDGETS = {"N": "", "F": " (F)"}  # budget notion -> method suffix: at LayerNAS's N evaluations (primary), at its F feasible ones
BASELINES = ("random", "evolution")
LABELS = {"layernas": "LayerNAS", "random": "random search", "evolution": "regularized evolution"}
TABLE_SPACES = ("nb201", "cora", "citeseer", "pubmed")
GRAPHS = ("cora", "citeseer", "pubmed")
CNN = {"quick": "cnn-quick", "full": "cnn-full"}
FRONT_LEVELS = tuple(np.round(np.arange(0.05, 1.0001, 0.05), 2))  # cost quantiles of the plotted fronts
AREA_LEVELS = 201  # evenly spaced cost levels of the front area
PILOT_SEEDS = {"quick": tuple(range(1000, 1002)), "full": tuple(range(1000, 1010))}  # the pilot's and the rule's: never reused in a claim
NOTES_NB201_BEST = 0.9407  # the notes' "max 94.07" (DATA.md §6): a reference to check the table against, not a result
PAPER = {  # what the notes could verify (06_layernas.md §5); nothing here is comparable number for number
    "NB-201": "NATS-Bench TSS is one of the paper's spaces: 'consistently superior' to baselines; no per-baseline numbers readable",
    "NB-Graph": "not in the paper",
    "CNN": "MobileNetV2/V3 spaces on ImageNet: up to 4.9% better top-1 than state-of-the-art alternatives (blog)",
}


def setting_label(base: str, bucketing: str) -> str:
    """E.g. ``"cheapest / equal-count"``: how tables and records name a LayerNAS setting."""
    return f"{base} / {bucketing}"


def method_label(strategy: str, budget: str = "N") -> str:
    """``"LayerNAS"``, ``"random search"`` (at LayerNAS's N), ``"random search (F)"`` (at its feasible count)."""
    return LABELS[strategy] + ("" if strategy == "layernas" else BUDGETS[budget])


# ---------------------------------------------------------------------------------------------------------- spaces
ADDITIVE = re.compile(r"additive-(\d+)x(\d+)-s(\d+)")  # e.g. "additive-5x3-s0": 5 layers x 3 options, seed 0


@lru_cache(maxsize=None)
def build_space(space: str) -> SearchSpace:
    """The space named ``space``, rebuilt from the cache: ``"nb201"``, ``"cora"``, ``"citeseer"``, ``"pubmed"``,
    ``"cnn-quick"``, ``"cnn-full"`` (its evaluations memoised in this process), or ``"additive-LxO-sS"`` (an
    additive synthetic space: L layers, O options, seed S)."""
    if space == "nb201":
        return nb201_space("params")
    if space in GRAPHS:
        return graph_space(space, "latency")
    if space in CNN.values():
        built = proxy_cnn_space(space.split("-", 1)[1])
        return dataclasses.replace(built, evaluate=lru_cache(maxsize=None)(built.evaluate))  # one cache read per architecture
    match = ADDITIVE.fullmatch(space)
    if match:
        layers, options, seed = map(int, match.groups())
        return additive_space(layers, options, seed=seed)
    raise ValueError(f"space must be one of {TABLE_SPACES + tuple(CNN.values())} or 'additive-<L>x<O>-s<seed>', got {space!r}")


def is_table(space: str) -> bool:
    """Whether every architecture of ``space`` is a lookup (fronts and the exhaustive front need that)."""
    return space in TABLE_SPACES or ADDITIVE.fullmatch(space) is not None


def space_name(space: str) -> str:
    return build_space(space).name


def context() -> dict:
    """What the cells depend on beyond their arguments: the tables' wheels, the proxy recipe, fixed choices."""
    return {"tables": table_versions(), "proxy": {"settings": PROXY_SETTINGS, "version": PROXY_VERSION, "data": data_version("fashion_mnist")},
            "H": H_BUCKETS, "k": K_PER_BUCKET, "area_levels": AREA_LEVELS, "front_levels": list(FRONT_LEVELS), "version": PROTOCOL_VERSION}


def table_versions() -> dict[str, str]:
    """Versions of the wheels that ship the benchmark tables (for the cells' context and the results file)."""
    return {package: version(package) for package in ("analog-nasbench", "nas-bench-graph")}


def _quantile(value: object) -> float | None:
    """A cell's cost quantile as plain data: a Python float, or None for no limit (a DataFrame turns None into NaN)."""
    return None if value is None or pd.isna(value) else float(value)


def _limit(space: SearchSpace, quantile: float | None) -> float | None:
    return None if quantile is None else space.cost_quantile(quantile)


@lru_cache(maxsize=None)
def _all_evaluations(space: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost, reward and report of every valid architecture of a table space (for fronts and the exhaustive front)."""
    if not is_table(space):
        raise ValueError(f"{space!r} is trained on the fly: its fronts would train every architecture")
    built = build_space(space)
    archs = built.all_archs()
    evaluations = [built.evaluate(a) for a in archs]
    return (np.array([built.cost(a) for a in archs]), np.array([e.reward for e in evaluations]), np.array([e.report for e in evaluations]))


# ----------------------------------------------------------------------------------------------------------- cells
def _run_summary(space: str, result: SearchResult, quantile: float | None) -> dict:
    """What a search cell returns: its N and F, and the pick and trace (constrained) or the front (unconstrained)."""
    row = {"evaluations": result.n_evaluations, "feasible_evaluations": int(result.feasible.sum()), "cost_limit": result.cost_limit}
    if quantile is not None:
        first = int(np.argmax(result.feasible)) + 1 if result.feasible.any() else None
        return {**row, "cost": result.cost, "val_accuracy": result.reward, "test_accuracy": result.report, "found": result.arch is not None,
                "first_feasible": first, "trace": result.trace()}
    built = build_space(space)
    costs, _, reports = _all_evaluations(space)
    floor = float(reports.min())
    front = result.front([built.cost_quantile(q) for q in FRONT_LEVELS])
    area = np.nan_to_num(result.front(np.linspace(built.min_cost, built.max_cost, AREA_LEVELS)), nan=floor) - floor
    q10 = built.cost_quantile(0.1)
    return {**row, "front": front, "front_area": float(area.mean()), "front_quantile_score": float(np.mean(np.nan_to_num(front, nan=floor))),
            "evaluated_below_q10": int((result.history_costs < q10).sum())}


def layernas_cell(space: str, quantile: float | None, base: str, bucketing: str, seed: int) -> dict:
    """One LayerNAS run (budget: the whole space) on ``space`` under the cost ``quantile`` (``None``: no limit)."""
    built = build_space(space)
    result = search(built, "layernas", built.size, _limit(built, quantile), seed, base=base, bucketing=bucketing)
    if result.n_evaluations == 0:
        raise RuntimeError(f"LayerNAS ({setting_label(base, bucketing)}) evaluated nothing on {built.name} at quantile {quantile}")
    return {**_run_summary(space, result, quantile), "kept_per_layer": result.info["kept_per_layer"], "bound": evaluation_bound(built)}


def baseline_cell(space: str, quantile: float | None, strategy: str, budget: int, seed: int) -> dict:
    """One run of ``strategy`` (``"random"`` or ``"evolution"``) with ``budget`` distinct evaluations."""
    if strategy not in BASELINES:
        raise ValueError(f"strategy must be one of {BASELINES}, got {strategy!r}")
    built = build_space(space)
    return _run_summary(space, search(built, strategy, budget, _limit(built, quantile), seed), quantile)


def oracle_cell(space: str, quantile: float) -> dict:
    """The exhaustive oracle under the cost ``quantile`` (on the CNN space it trains every feasible architecture)."""
    built = build_space(space)
    oracle = exhaustive(built, built.cost_quantile(quantile))
    return {**{k: v for k, v in oracle.items() if k != "arch"}, "cost_limit": built.cost_quantile(quantile), "oracle_arch": built.describe(oracle["arch"])}


def exhaustive_front_cell(space: str) -> list[dict]:
    """The exhaustive front of a table space: at each plotted cost level, the best-validation architecture's test accuracy."""
    built = build_space(space)
    costs, rewards, reports = _all_evaluations(space)
    rows = []
    for q in FRONT_LEVELS:
        level = built.cost_quantile(q)
        ok = np.flatnonzero(costs <= level)
        rows.append({"level": q, "cost_level": level, "test_accuracy": float(reports[ok[np.argmax(rewards[ok])]])})
    return rows


def count_cell(layers: int, n_options: int, base: str, bucketing: str, seed: int, quantile: float = 0.5) -> dict:
    """LayerNAS's N on an additive synthetic space (independent layers) against its bounds and |S|^L."""
    space = additive_space(layers, n_options, seed=seed)
    result = search(space, "layernas", space.size, space.cost_quantile(quantile), seed, base=base, bucketing=bucketing)
    return {"space_size": space.size, "evaluations": result.n_evaluations, "bound": evaluation_bound(space), "kH|S|L": coarse_bound(space),
            "feasible_pick": bool(result.arch is not None and result.cost <= result.cost_limit),
            "optimum_found": bool(np.isclose(result.report, exhaustive(space, result.cost_limit)["report"]))}


# ---------------------------------------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class NASSettings:
    """The numbers of one profile.

    Attributes:
        spaces: space keys (:func:`build_space`), the tables first, the CNN space last.
        quantiles: the table spaces' cost limits (quantiles of their costs); ``cnn_quantiles`` the CNN space's (its
            oracle trains every architecture within the limit, so it has one).
        seeds: the claims' replicates (search seeds); ``pilot_seeds`` those of the pilot and of the primary-setting
            rule, never reused in a claim.
        depths: the additive spaces' depths of the evaluation count (4 options per layer).
        choosing: the dataset the primary-setting rule chooses on (left out of the claims).
    """

    spaces: tuple[str, ...]
    quantiles: tuple[float, ...]
    cnn_quantiles: tuple[float, ...]
    seeds: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    depths: tuple[int, ...]
    choosing: str = "cora"

    def limits(self, space: str) -> tuple[float, ...]:
        return self.cnn_quantiles if space in CNN.values() else self.quantiles

    @property
    def shown_limits(self) -> dict[str, float]:
        """The cost limit each space shows in the figures and the paper-vs-ours table: its middle one."""
        return {s: self.limits(s)[len(self.limits(s)) // 2] for s in self.spaces}

    @property
    def claim_spaces(self) -> tuple[str, ...]:
        """Every space but the choosing dataset."""
        return tuple(s for s in self.spaces if s != self.choosing)


def settings(profile: str, replicates: int) -> NASSettings:
    """The settings of ``profile``; ``replicates`` is the declared number of search seeds (the quick profile runs 2).

    Quick: NB-201, Cora and a 2^3 CNN space at the median limit. Full: + CiteSeer and PubMed, the tables at the 25th,
    50th and 75th cost percentiles, the 4^4 CNN space at the 25th only: at the median the four settings' searches
    train ~151 of its 256 architectures (3-5 s each on one loaded core), at the 25th ~85 cheaper ones, which fits
    the cold budget.
    """
    graphs = pick(profile, {"quick": ("cora",), "full": GRAPHS})
    return NASSettings(
        spaces=("nb201", *graphs, CNN[profile]), quantiles=pick(profile, {"quick": (0.5,), "full": (0.25, 0.5, 0.75)}),
        cnn_quantiles=pick(profile, {"quick": (0.5,), "full": (0.25,)}),
        seeds=tuple(range(pick(profile, {"quick": 2, "full": replicates}))), pilot_seeds=pick(profile, PILOT_SEEDS),
        depths=pick(profile, {"quick": (2, 4, 6), "full": (2, 3, 4, 5, 6, 7, 8)}),
    )


def run_searches(chosen: NASSettings, spaces: Sequence[str], seeds: Sequence[int], setting_list: Sequence[tuple[str, str]] = SETTINGS,
                 budgets: Sequence[str] = tuple(BUDGETS), front: bool = True, progress: bool = True) -> pd.DataFrame:
    """LayerNAS's cells, then the baselines' cells at each LayerNAS run's N (and F); one tidy row per run.

    Returns:
        Columns ``space`` (key), ``name``, ``kind`` ("constrained" / "front"), ``quantile`` (NaN for a front),
        ``setting``, ``base``, ``bucketing``, ``method`` (:func:`method_label`), ``strategy``, ``budget`` ("N", "F";
        "" for LayerNAS), ``seed``, and what the cells return (N, F, pick, trace, front measures, ...).

    Raises:
        ValueError: an unknown budget notion, or a LayerNAS run without a feasible evaluation when F is asked for.
    """
    unknown = set(budgets) - set(BUDGETS)
    if unknown:
        raise ValueError(f"budget notions must be among {sorted(BUDGETS)}, got {sorted(unknown)}")
    targets = [(s, float(q)) for s in spaces for q in chosen.limits(s)] + ([(s, None) for s in spaces if is_table(s)] if front else [])
    cells = [{"space": s, "quantile": q, "base": b, "bucketing": k, "seed": int(seed)} for s, q in targets for b, k in setting_list for seed in seeds]
    layernas = run_grid(layernas_cell, experiment=EXPERIMENT, cells=cells, context=context(), progress=progress).to_dict("records")
    for row in layernas:
        row["quantile"] = _quantile(row["quantile"])

    def budgets_of(row: dict) -> dict[str, int]:
        """The baselines' budgets of one LayerNAS run (without a limit every evaluation is feasible: F = N, one notion)."""
        notions = budgets if row["quantile"] is not None else ("N",)
        return {n: int(row["evaluations"] if n == "N" else row["feasible_evaluations"]) for n in notions}

    wanted: dict[tuple, dict] = {}
    for row in layernas:
        for notion, budget in budgets_of(row).items():
            if budget < 1:
                raise ValueError(f"LayerNAS evaluated nothing feasible on {row['space']} at quantile {row['quantile']} "
                                 f"({setting_label(row['base'], row['bucketing'])})")
            for strategy in BASELINES:
                key = (row["space"], row["quantile"], strategy, budget, int(row["seed"]))
                wanted.setdefault(key, dict(zip(("space", "quantile", "strategy", "budget", "seed"), key)))
    found = run_grid(baseline_cell, experiment=EXPERIMENT, cells=list(wanted.values()), context=context(), progress=progress).to_dict("records")
    by_key = dict(zip(wanted, found))
    rows = []
    for row in layernas:
        common = {"space": row["space"], "name": space_name(row["space"]), "kind": "front" if row["quantile"] is None else "constrained",
                  "quantile": np.nan if row["quantile"] is None else row["quantile"], "setting": setting_label(row["base"], row["bucketing"]),
                  "base": row["base"], "bucketing": row["bucketing"], "seed": int(row["seed"])}
        rows.append({**row, **common, "method": method_label("layernas"), "strategy": "layernas", "budget": ""})
        for notion, budget in budgets_of(row).items():
            for strategy in BASELINES:
                result = by_key[(row["space"], row["quantile"], strategy, budget, int(row["seed"]))]
                rows.append({**{k: v for k, v in result.items() if k != "budget"}, **common, "method": method_label(strategy, notion),
                             "strategy": strategy, "budget": notion, "budget_evaluations": budget})
    return pd.DataFrame(rows)


def run_oracles(chosen: NASSettings, spaces: Sequence[str], progress: bool = True) -> pd.DataFrame:
    """The exhaustive oracle of every (space, limit)."""
    cells = [{"space": s, "quantile": q} for s in spaces for q in chosen.limits(s)]
    frame = run_grid(oracle_cell, experiment=EXPERIMENT, cells=cells, context=context(), progress=progress)
    return frame.assign(name=[space_name(s) for s in frame.space])


def run_exhaustive_fronts(spaces: Sequence[str], progress: bool = True) -> pd.DataFrame:
    """The exhaustive front of every table space among ``spaces``."""
    cells = [{"space": s} for s in spaces if is_table(s)]
    frame = run_grid(exhaustive_front_cell, experiment=EXPERIMENT, cells=cells, context=context(), progress=progress)
    return frame.assign(name=[space_name(s) for s in frame.space])


def evaluation_counts(chosen: NASSettings, n_options: int = 4, setting_list: Sequence[tuple[str, str]] = SETTINGS, progress: bool = True) -> pd.DataFrame:
    """LayerNAS's N on additive spaces of growing depth, for every setting and seed."""
    cells = [{"layers": d, "n_options": n_options, "base": b, "bucketing": k, "seed": int(s)} for d in chosen.depths for b, k in setting_list for s in chosen.seeds]
    frame = run_grid(count_cell, experiment=EXPERIMENT, cells=cells, context=context(), progress=progress)
    return frame.assign(setting=[setting_label(b, k) for b, k in zip(frame.base, frame.bucketing)])


# --------------------------------------------------------------------------------------------------------- records
def experiment_name(name: str, quantile: float) -> str:
    """``"NB-201 @ q25"`` for a constrained task, ``"NB-201 front"`` for a front (quantile NaN)."""
    return f"{name} front" if pd.isna(quantile) else f"{name} @ q{int(round(100 * quantile))}"


CONSTRAINED_METRICS = ("test_accuracy", "val_accuracy", "evaluations", "feasible_evaluations")
FRONT_METRICS = ("front_area", "front_quantile_score", "evaluations")


def to_records(runs: pd.DataFrame) -> list[Record]:
    """Every run's measures as Records: experiment = the task, method = strategy and budget, setting = LayerNAS's
    setting (a baseline's record belongs to the setting whose N or F it was given)."""
    records = []
    for row in runs.to_dict("records"):
        for metric in CONSTRAINED_METRICS if row["kind"] == "constrained" else FRONT_METRICS:
            records.append(Record(experiment_name(row["name"], row["quantile"]), row["method"], row["setting"], int(row["seed"]), metric, float(row[metric])))
    return records


def tasks(records: Iterable[Record] | pd.DataFrame, kind: str, names: Sequence[str] | None = None) -> list[str]:
    """Experiment names of ``kind`` ("constrained" or "front"), in order, optionally only those of space ``names``."""
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    found = dict.fromkeys(e for e in frame.experiment if e.endswith(" front") == (kind == "front"))
    return [e for e in found if names is None or any(e.startswith(n + " ") for n in names)]


def differences(records: pd.DataFrame, setting: str, experiments: Sequence[str], baselines: Sequence[str], metric: str = "test_accuracy") -> dict[str, Estimate]:
    """LayerNAS minus each baseline method in ``metric`` (pp), per task paired over seeds and pooled with equal weights."""
    subset = records[records.setting == setting]
    return {b: pooled(paired_estimates(subset, method_label("layernas"), b, experiments, metric=metric)) for b in baselines}


def interval_text(estimate: Estimate) -> str:
    low, high = estimate.interval(0.95)
    return f"{estimate.mean:+.2f} [{low:+.2f}, {high:+.2f}]"


# ---------------------------------------------------------------------------------------------------------- tables
def space_summary(spaces: Sequence[str]) -> pd.DataFrame:
    """Layers, options, sizes, cost ranges and both base architectures of the spaces (nothing is evaluated)."""
    rows = []
    for key in spaces:
        space = build_space(key)
        rows.append({"space": space.name, "layers L": len(space.layers), "options per layer": "x".join(str(len(l.options)) for l in space.layers),
                     "combinations": int(np.prod(space.shape)), "distinct architectures": len({space.identity(a) for a in space.all_archs()}),
                     "cost": space.cost_name, "min cost": space.min_cost, "max cost": space.max_cost,
                     **{f"base ({b})": space.describe(space.base_arch(b)) for b in BASE_POLICIES}, "description": space.description})
    return pd.DataFrame(rows).set_index("space")


def space_points(space: str, cost_limit: float | None = None) -> pd.DataFrame:
    """Cost and test accuracy of every valid architecture of a table space (within ``cost_limit``), one row per key."""
    built = build_space(space)
    seen, rows = set(), []
    for arch in built.all_archs(np.inf if cost_limit is None else cost_limit):
        identity = built.identity(arch)
        if identity not in seen:
            seen.add(identity)
            rows.append({"space": built.name, "cost": built.cost(arch), "test_accuracy": built.evaluate(arch).report})
    return pd.DataFrame(rows)


def results_table(runs: pd.DataFrame, oracles: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Per task, for LayerNAS's ``setting``: the limit, feasible architectures, LayerNAS's N and F, each strategy's
    pick (test accuracy %, mean ± std over seeds; baselines at N and at F), the oracle, and the oracle's hit counts."""
    constrained = runs[(runs.kind == "constrained") & (runs.setting == setting)]
    frame = to_frame(to_records(constrained))
    accuracy = mean_std_table(frame[frame.metric == "test_accuracy"], index="experiment", columns="method")
    methods = [method_label("layernas")] + [method_label(s, b) for b in BUDGETS for s in BASELINES]
    rows = []
    for (name, q), group in constrained.groupby(["name", "quantile"], sort=False):
        oracle = oracles[(oracles.name == name) & np.isclose(oracles["quantile"], q)].iloc[0]
        ln = group[group.strategy == "layernas"]
        hits = group[group.budget != "F"].assign(hit=lambda f: np.isclose(f.test_accuracy, oracle.report)).groupby("method").hit.sum()
        rows.append({"task": experiment_name(name, q), "cost limit": f"{oracle.cost_limit:.4g}", "feasible archs": int(oracle.n_feasible),
                     "N": f"{ln.evaluations.mean():.0f}", "F": f"{ln.feasible_evaluations.mean():.0f}",
                     **{m: accuracy.loc[experiment_name(name, q), m] for m in methods}, "oracle": f"{100 * oracle.report:.2f}",
                     "runs at the oracle (LN, RS, RE)": ", ".join(f"{int(hits.get(method_label(s), 0))}" for s in ("layernas", *BASELINES)) + f" of {len(ln)}"})
    return pd.DataFrame(rows).set_index("task")


def paper_vs_ours(runs: pd.DataFrame, oracles: pd.DataFrame, setting: str, quantiles: dict[str, float]) -> pd.DataFrame:
    """At one cost limit per space (``quantiles``: space key -> quantile): the paper's statement and our mean test
    accuracy (%) of each pick (LayerNAS's ``setting``, baselines at its N) and the oracle."""
    rows = []
    at = runs[(runs.kind == "constrained") & (runs.setting == setting) & np.isclose(runs["quantile"], runs.space.map(quantiles)) & (runs.budget != "F")]
    for (name, q), group in at.groupby(["name", "quantile"], sort=False):
        means = group.groupby("strategy").test_accuracy.mean() * 100
        oracle = oracles[(oracles.name == name) & np.isclose(oracles["quantile"], q)].report.iloc[0] * 100
        rows.append({"task": experiment_name(name, q), "paper": next((t for key, t in PAPER.items() if name.startswith(key)), ""),
                     "N (LayerNAS)": f"{group[group.strategy == 'layernas'].evaluations.mean():.0f}",
                     **{LABELS[s]: f"{means[s]:.2f}" for s in LABELS}, "oracle": f"{oracle:.2f}"})
    return pd.DataFrame(rows).set_index("task")


def sensitivity_table(records: pd.DataFrame, runs: pd.DataFrame, claim_names: Sequence[str]) -> pd.DataFrame:
    """Every space and the front, for every LayerNAS setting: N and F, LayerNAS's mean pick, and LayerNAS minus each
    baseline (pp, paired per task over seeds, pooled over the space's limits with equal weights, 95 % CI) at N and
    at F; then the front area against the baselines at N. A last block pools the claims' tasks."""
    baselines = [method_label(s, b) for b in BUDGETS for s in BASELINES]
    rows = []
    groups = [(name, [name]) for name in dict.fromkeys(runs.name)] + [("claim tasks (pooled)", list(claim_names))]
    for label, names in groups:
        constrained, fronts = tasks(records, "constrained", names), tasks(records, "front", names)
        for setting in dict.fromkeys(runs.setting):
            ln = runs[(runs.setting == setting) & (runs.strategy == "layernas") & (runs.kind == "constrained") & runs.name.isin(names)]
            row = {"space": label, "setting": setting}
            if len(names) == 1:  # means over spaces of different sizes say nothing
                row.update({"N": f"{ln.evaluations.mean():.0f}", "F": f"{ln.feasible_evaluations.mean():.0f}",
                            "LayerNAS pick (%)": f"{100 * ln.test_accuracy.mean():.2f}"})
            row.update({f"− {b}": interval_text(e) for b, e in differences(records, setting, constrained, baselines).items()})
            if fronts:
                row.update({f"front area − {b}": interval_text(e)
                            for b, e in differences(records, setting, fronts, [method_label(s) for s in BASELINES], "front_area").items()})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["space", "setting"]).fillna("")


def count_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per real space: LayerNAS's N (range over every setting, limit and seed), its bounds, and the size of the space."""
    layernas = runs[runs.strategy == "layernas"]
    rows = []
    for key, group in layernas.groupby("space", sort=False):
        space = build_space(key)
        rows.append({"space": space.name, "L": len(space.layers), "|S|": "x".join(str(len(layer.options)) for layer in space.layers),
                     "architectures": space.size, "N min": int(group.evaluations.min()), "N max": int(group.evaluations.max()),
                     "bound": evaluation_bound(space), "kH|S|L": coarse_bound(space)})
    return pd.DataFrame(rows).set_index("space")


def synthetic_count_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Per depth L of the additive spaces: |S|^L, the bounds, LayerNAS's mean N per setting, and the share of runs
    (every setting and seed) that found the exact optimum."""
    by_depth = counts.groupby("layers")
    table = pd.DataFrame({"architectures": by_depth.space_size.first(), "bound": by_depth.bound.first(), "kH|S|L": by_depth["kH|S|L"].first()})
    n = counts.pivot_table(index="layers", columns="setting", values="evaluations", aggfunc="mean")
    n = n[[c for c in (setting_label(*s) for s in SETTINGS) if c in n]]
    return table.join(n.rename(columns=lambda c: f"N ({c})").round(1)).assign(**{"optimum found": by_depth.optimum_found.mean()})


def cnn_training(space: str) -> dict:
    """How many of the CNN space's architectures are trained (cached) and what their proxy training cost."""
    trained = trained_architectures(space.split("-", 1)[1])
    seconds = np.array([t["seconds"] for t in trained])
    return {"trained": len(trained), "architectures": build_space(space).size, "mean_seconds": float(seconds.mean()) if len(seconds) else float("nan"),
            "total_minutes": float(seconds.sum() / 60)}


def kept_table(runs: pd.DataFrame, name: str, seed: int = 0) -> pd.DataFrame:
    """Models LayerNAS keeps after each layer (against k·H) and its N / F, per setting and limit, on space ``name``."""
    ln = runs[(runs.strategy == "layernas") & (runs.name == name) & (runs.seed == seed) & (runs.kind == "constrained")]
    return pd.DataFrame([{"setting": r.setting, "limit": f"q{int(round(100 * r.quantile))}", "kept per layer": str(list(r.kept_per_layer)),
                          "N": int(r.evaluations), "F": int(r.feasible_evaluations)} for r in ln.itertuples()]).set_index(["setting", "limit"])


# --------------------------------------------------------------------------------------------------- figure frames
def trace_frame(runs: pd.DataFrame, setting: str, quantiles: dict[str, float]) -> pd.DataFrame:
    """Best test accuracy (%) so far after each evaluation at one cost limit per space (``quantiles``: space key ->
    quantile): every LayerNAS setting, and the baselines at the N of ``setting``; NaN before a run's first feasible
    evaluation. ``name`` is the task (e.g. ``"NB-201 @ q50"``)."""
    at = runs[(runs.kind == "constrained") & np.isclose(runs["quantile"], runs.space.map(quantiles))]
    chosen = at[(at.strategy == "layernas") | ((at.setting == setting) & (at.budget == "N"))]
    parts = [pd.DataFrame({"name": experiment_name(r.name, r.quantile), "method": r.method if r.strategy != "layernas" else f"LayerNAS ({r.setting})",
                           "seed": r.seed, "evaluation": np.arange(1, len(r.trace) + 1), "accuracy": 100 * np.asarray(r.trace, dtype=float)})
             for r in chosen.itertuples()]
    return pd.concat(parts, ignore_index=True)


def front_frames(runs: pd.DataFrame, setting: str, exhaustive_fronts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The front figure's lines and picks for LayerNAS's ``setting`` and the baselines at its N.

    Returns:
        ``fronts`` (name, method, cost_level, accuracy %: the mean front over seeds; method "exhaustive" too) and
        ``picks`` (name, method, cost, accuracy %, cost_limit: every constrained pick).
    """
    mine = runs[(runs.setting == setting) & (runs.budget != "F")]
    lines = []
    for r in mine[mine.kind == "front"].itertuples():
        levels = exhaustive_fronts[exhaustive_fronts.name == r.name].sort_values("level").cost_level.to_numpy()
        lines += [{"name": r.name, "method": r.method, "seed": r.seed, "cost_level": c, "accuracy": 100 * a} for c, a in zip(levels, r.front)]
    fronts = pd.DataFrame(lines).groupby(["name", "method", "cost_level"], sort=False).accuracy.mean().reset_index()
    exhaustive_lines = exhaustive_fronts.assign(method="exhaustive", accuracy=100 * exhaustive_fronts.test_accuracy)[["name", "method", "cost_level", "accuracy"]]
    picks = mine[mine.kind == "constrained"].assign(accuracy=lambda f: 100 * f.test_accuracy)[["name", "method", "cost", "accuracy", "cost_limit"]]
    return pd.concat([exhaustive_lines, fronts], ignore_index=True), picks
