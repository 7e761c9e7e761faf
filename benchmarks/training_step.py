"""Time per student step of kdlib's training engine against a bare PyTorch loop (a benchmark, not a test).

    python benchmarks/training_step.py [--repeats 7] [--steps 60] [--students 8] [--threads 2]

Prints one JSON line: milliseconds per student step for a bare loop (one SmallCNN student, Fashion-MNIST-shaped
input, batch 64, 2 threads, fused AdamW), ``kdlib.train.fit`` with that one student, 8 separate students (the bare
loop run 8 times) and one stack of 8 (:class:`~kdlib.models.stacked.StackedCNN` through ``fit``), each the median
of interleaved repeats (single runs on shared machines vary by tens of percent), plus the ratios ``fit_over_bare``
and ``separate_over_stack``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from kdlib.distill import get_objective
from kdlib.models import STUDENT_CNN, CNNConfig, SmallCNN
from kdlib.models.stacked import StackedCNN
from kdlib.train import TrainConfig, TrainSet, fit

BATCH = 64
CONFIG = CNNConfig(in_channels=1, num_classes=10, **STUDENT_CNN)


def data(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(steps * BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (steps * BATCH,), generator=g)


def bare_loop(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> float:
    """Seconds for one epoch of the plain loop: forward, cross-entropy, backward, fused AdamW step."""
    torch.manual_seed(seed)
    model = SmallCNN(CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for begin in range(0, len(x), BATCH):
        idx = order[begin : begin + BATCH]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def engine(x: torch.Tensor, y: torch.Tensor, students: int) -> float:
    """Seconds for one epoch of ``kdlib.train.fit`` (one SmallCNN, or a StackedCNN of ``students``)."""
    torch.manual_seed(0)
    model = SmallCNN(CONFIG) if students == 1 else StackedCNN(CONFIG, students, seed=0)
    config = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-3, patience=None)
    return fit(model, get_objective("ce"), TrainSet(x, y), config=config, seed=0, progress=False).seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2; 1 when another job holds a core)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, y = data(args.steps)
    bare_loop(x, y), engine(x, y, 1), engine(x, y, args.students)  # warm-up (allocator, oneDNN kernels)
    times: dict[str, list[float]] = {"bare": [], "fit_1": [], "separate": [], "stack": []}
    for _ in range(args.repeats):  # interleaved, so that drifts in machine load hit every variant alike
        times["bare"].append(bare_loop(x, y))
        times["fit_1"].append(engine(x, y, 1))
        times["separate"].append(sum(bare_loop(x, y, seed) for seed in range(args.students)) / args.students)
        times["stack"].append(engine(x, y, args.students) / args.students)
    ms = {name: 1000 * statistics.median(values) / args.steps for name, values in times.items()}
    result = {
        "benchmark": "training_step", "batch": BATCH, "input": [1, 28, 28], "student": dict(STUDENT_CNN), "students": args.students,
        "threads": torch.get_num_threads(), "repeats": args.repeats, "steps": args.steps,
        "ms_per_student_step": {k: round(v, 3) for k, v in ms.items()},
        "fit_over_bare": round(ms["fit_1"] / ms["bare"], 3), "separate_over_stack": round(ms["separate"] / ms["stack"], 3),
        "torch": torch.__version__, "machine": platform.machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
