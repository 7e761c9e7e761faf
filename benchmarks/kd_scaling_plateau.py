"""Is notebook 05's CE-only student on a plateau? One student at 100 % of the pool, per recipe and schedule (a probe,
not a test).

    python benchmarks/kd_scaling_plateau.py [--recipes strong] [--epochs 512] [--pool 500] [--seed 1001] [--threads 2]

Trains :func:`kdlib.experiments.kd_scaling.train_cell`'s CE-only student (notebook 05's (16, 32, 64) CNN, AdamW,
cosine to zero) on ``--pool`` Fashion-MNIST images of the replicate ``--seed`` (a pilot seed by default, never a claim's),
for each recipe and number of epochs, and prints one JSON line per run: the test accuracy on notebook 05's 5,000 test
images, the validation curve at a quarter, half, three quarters and the end of the schedule, the steps, and the
milliseconds per step. The notebook's own 256-epoch cell of the same seed is the comparison (its probe table).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from kdlib.experiments import kd_scaling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["strong"], choices=sorted(kd_scaling.RECIPES))
    parser.add_argument("--epochs", type=int, nargs="+", default=[512])
    parser.add_argument("--pool", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1001)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full = kd_scaling.SETTINGS["full"]
    for recipe in args.recipes:
        for epochs in args.epochs:
            start = time.perf_counter()
            rows = kd_scaling.train_cell(full["datasets"][0], args.pool, 1.0, recipe, epochs, "CE only", full["teachers"], full["test_size"], args.seed)
            test = next(r for r in rows if r["set"] == "test")
            print(json.dumps({
                "benchmark": "kd_scaling_plateau", "recipe": recipe, "epochs": epochs, "pool": args.pool, "seed": args.seed,
                "student": kd_scaling.STUDENT, "test_accuracy": round(100 * test["accuracy"], 2),
                "val_curve": {int(r["step"]): round(100 * r["accuracy"], 2) for r in rows if r["set"] == "val"},
                "steps": test["step"], "ms_per_step": round(1000 * test["seconds"] / test["step"], 1),
                "seconds": round(time.perf_counter() - start), "threads": args.threads,
            }), flush=True)


if __name__ == "__main__":
    main()
