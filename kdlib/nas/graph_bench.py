"""NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets & Benchmarks) from the ``nas-bench-graph==1.4.0`` wheel:
26,206 distinct GNN architectures per dataset, each with validation accuracy, test accuracy, latency and parameters.

An architecture is a macro DAG of 4 computing nodes: a link pattern (which earlier node feeds each node; 9 canonical
patterns) and one operation per node (9 GNN layers). As a layer-wise space that is L = 5 layers: the link pattern,
then the operation of nodes 1-4, so 9^5 = 59,049 combinations. The package's ``Arch.valid_hash`` merges isomorphic
combinations into the 26,206 table entries; we use it as the space's key (a duplicate is evaluated once). The 9
combinations with every operation ``skip`` have no entry and are invalid.

Search signal: ``valid_perf``; reported: ``perf`` (test accuracy); cost: ``latency`` (the table's units, not documented)
or ``para`` (millions of parameters).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np

from kdlib.cache import Cache, sha256_file
from kdlib.nas.space import Layer, SearchSpace, table_space

PACKAGE = "nas_bench_graph"
DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv")  # 26,206 archs each
COSTS = {"latency": "latency", "params": "para"}


def bench_path(dataset: str) -> Path:
    """The light table of ``dataset`` inside the installed wheel."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed: pip install nas-bench-graph==1.4.0")
    return Path(spec.submodule_search_locations[0]) / "light" / f"{dataset}.bench"


@lru_cache(maxsize=1)
def layer_options() -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    """The package's 9 link patterns and 9 operations, in its own order."""
    from nas_bench_graph import gnn_list, link_list

    return tuple(tuple(link) for link in link_list), tuple(gnn_list)


def _hash_grid() -> np.ndarray:
    from nas_bench_graph import Arch

    links, ops = layer_options()
    keys = np.empty((len(links),) + (len(ops),) * 4, dtype=np.int64)
    for index in np.ndindex(keys.shape):
        keys[index] = Arch(list(links[index[0]]), [ops[i] for i in index[1:]]).valid_hash()
    return keys


def hash_grid(cache: Cache | None = None) -> np.ndarray:
    """``valid_hash`` of every (link, op1..op4) combination (cached: 59,049 hashes take a few seconds)."""
    version = importlib.metadata.version("nas-bench-graph")
    return (cache or Cache()).get_or_compute("nas_tables", {"nas_bench_graph_hashes": version, "version": 1}, _hash_grid)


def load_table(dataset: str) -> dict[int, dict]:
    """The light table of ``dataset``: ``valid_hash -> {valid_perf, perf, latency, para}``."""
    path = bench_path(dataset)
    with open(path, "rb") as handle:
        table = pickle.load(handle)  # the wheel's own data file (a dict of dicts of floats)
    return table


def graph_space(dataset: str = "cora", cost_model: str = "latency", cache: Cache | None = None) -> SearchSpace:
    """The NAS-Bench-Graph space of ``dataset`` with ``cost_model`` ``"latency"`` or ``"params"``."""
    if cost_model not in COSTS:
        raise ValueError(f"cost_model must be one of {sorted(COSTS)}, got {cost_model!r}")
    cache = cache or Cache()
    keys = hash_grid(cache)

    def arrays() -> dict[str, np.ndarray]:
        table = load_table(dataset)
        out = {name: np.full(keys.shape, np.nan) for name in ("valid_perf", "perf", "latency", "para")}
        for index in np.ndindex(keys.shape):
            entry = table.get(int(keys[index]))
            if entry is not None:
                for name, grid in out.items():
                    grid[index] = float(entry[name])
        return out

    key = {"bench": sha256_file(bench_path(dataset)), "hashes": importlib.metadata.version("nas-bench-graph"), "version": 1}
    grids = cache.get_or_compute("nas_tables", key, arrays)
    costs = np.where(np.isnan(grids[COSTS[cost_model]]), np.inf, grids[COSTS[cost_model]])
    links, ops = layer_options()
    layers = [Layer("link", tuple("".join(map(str, link)) for link in links))] + [Layer(f"op{i}", ops) for i in range(1, 5)]
    return table_space(
        f"NB-Graph {dataset}", layers, costs, np.nan_to_num(grids["valid_perf"]), np.nan_to_num(grids["perf"]),
        cost_name="latency" if cost_model == "latency" else "parameters (M)", keys=keys,
        description=f"NAS-Bench-Graph {dataset}: search on validation accuracy, report test accuracy",
    )
