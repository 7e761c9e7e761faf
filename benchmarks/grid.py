"""Wall time of a grid run by the local engine and by Ray on a local cluster (a benchmark, not a test).

    python benchmarks/grid.py [--cells 16] [--durations 0.01 0.05 0.2 0.5 2 5]

Each cell is a real (tiny) training run whose length sets the cell's duration. For every duration the same grid runs
cold (a fresh cache) on the local engine and on a local Ray cluster with this machine's CPUs; one JSON line per
duration prints both wall times and ``local_over_ray`` (above 1: Ray is faster; with 2 CPUs its ceiling is 2, less
its per-task overhead). The last line names the shortest duration at which the ratio reaches 0.9.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from kdlib.cache import Cache
from kdlib.grid import run_grid


def timed_cell(seconds: float, seed: int) -> dict:
    """Train a small MLP until ``seconds`` of wall time have passed (one thread); returns its step count."""
    from kdlib.distill import get_objective
    from kdlib.models import MLP
    from kdlib.train import TrainConfig, TrainSet, fit, torch_threads

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 32, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    model, steps, start = MLP(32, 2, hidden=(64,)), 0, time.perf_counter()
    with torch_threads(1):
        while time.perf_counter() - start < seconds:
            steps += fit(model, get_objective("ce"), TrainSet(x, y), config=TrainConfig(epochs=1, batch_size=64, patience=None), seed=seed, progress=False).steps
    return {"steps": steps}


def wall_time(engine: str, cells: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        run_grid(timed_cell, experiment="benchmark", settings=[{"seconds": seconds}], seeds=range(cells), cache=Cache(cache), engine=engine,
                 progress=False)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--durations", type=float, nargs="+", default=[0.01, 0.05, 0.2, 0.5, 2.0, 5.0])
    args = parser.parse_args(argv)
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    wall_time("ray", 2, 0.01)  # warm-up: the workers start once per cluster
    wall_time("local", 1, 0.01)  # and the driver imports the cell's modules once
    lines = []
    for seconds in args.durations:
        local, remote = wall_time("local", args.cells, seconds), wall_time("ray", args.cells, seconds)
        lines.append({"benchmark": "grid", "cells": args.cells, "cell_seconds": seconds, "cpus": os.cpu_count(), "local_s": round(local, 2),
                      "ray_s": round(remote, 2), "local_over_ray": round(local / remote, 3)})
        print(json.dumps(lines[-1]), flush=True)
    passing = [line["cell_seconds"] for line in lines if line["local_over_ray"] >= 0.9]
    print(json.dumps({"benchmark": "grid", "ratio_reaches_0.9_at_cell_seconds": min(passing) if passing else None}))
    ray.shutdown()
    return lines


if __name__ == "__main__":
    main()
