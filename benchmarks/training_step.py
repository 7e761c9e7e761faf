"""Time per student step of kdlib's training engine against a bare PyTorch loop (a benchmark, not a test).

    python benchmarks/training_step.py [--repeats 7] [--steps 60] [--students 8] [--threads 2] [--profile] [--layout] [--sweep] [--compile]

Prints one JSON line: milliseconds per student step for a bare loop (one SmallCNN student, Fashion-MNIST-shaped
input, batch 64, 2 threads, fused AdamW), ``kdlib.train.fit`` with that one student, 8 separate students (the bare
loop run 8 times) and one stack of 8 (:class:`~kdlib.models.stacked.StackedCNN` through ``fit``), each the median
of interleaved repeats (single runs on shared machines vary by tens of percent), plus the ratios ``fit_over_bare``
and ``separate_over_stack``. With ``--profile``, a second line gives the self CPU time per operator (torch.profiler,
10 steps) of one student and of the stack, and the stack's cost per operator relative to one student: where that
ratio is close to the number of students, stacking saves nothing on that operator (a memory-bound pass over M times
the activations), which is what bounds ``separate_over_stack``. ``--layout`` times the stack's bare loop with
NCHW weights against channels-last ones; ``--sweep`` times stacks of 1 to 32 students through ``fit`` and through
the bare stacked loop: the best any stack of this student reaches on this CPU; ``--compile`` times the bare loop
with ``torch.compile`` against eager, for one student and for the stack.
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

PROFILED_STEPS = 10
SWEEP = (1, 2, 4, 8, 16, 32)  # stack sizes of --sweep

BATCH = 64
CONFIG = CNNConfig(in_channels=1, num_classes=10, **STUDENT_CNN)


def data(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(steps * BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (steps * BATCH,), generator=g)


def bare_loop(x: torch.Tensor, y: torch.Tensor, seed: int = 0, students: int = 1, layout: torch.memory_format = SmallCNN.memory_format) -> float:
    """Seconds for one epoch of the plain loop: forward, cross-entropy, backward, fused AdamW step, for one SmallCNN
    or a StackedCNN of ``students`` (one fused cross-entropy over all their outputs: what stacking alone gives,
    without the engine's per-student objectives). By default in the layout the engine trains in (channels-last
    weights and batches), so that the ratios measure the loop and the stacking; ``--layout`` also times NCHW weights."""
    model = bare_model(seed, students, layout)
    return bare_epoch(model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True), x, y, seed, students)


def bare_model(seed: int, students: int, layout: torch.memory_format = SmallCNN.memory_format) -> torch.nn.Module:
    """A fresh SmallCNN (``students`` = 1) or StackedCNN in ``layout``."""
    torch.manual_seed(seed)
    return (SmallCNN(CONFIG) if students == 1 else StackedCNN(CONFIG, students, seed=seed)).to(memory_format=layout)


def bare_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, seed: int, students: int) -> float:
    """Seconds for one epoch of the plain loop over ``model`` (possibly compiled)."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for begin in range(0, len(x), BATCH):
        idx = order[begin : begin + BATCH]
        out = model(x[idx].contiguous(memory_format=SmallCNN.memory_format))
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y[idx].repeat(students))
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


def sweep_line(x: torch.Tensor, y: torch.Tensor, repeats: int, steps: int) -> dict:
    """Milliseconds per student step of one student (bare loop) and of stacks of ``SWEEP`` students, through ``fit``
    and through the bare stacked loop, medians of interleaved repeats. The per-student time of a stack falls while
    stacking amortises per-operator overhead and rises again once the stack's activations outgrow the cache; its
    minimum bounds ``separate_over_stack`` for this student, batch and CPU."""
    times: dict[str, list[float]] = {"single": [], **{f"fit_{m}": [] for m in SWEEP}, **{f"loop_{m}": [] for m in SWEEP}}
    for _ in range(repeats):
        times["single"].append(bare_loop(x, y))
        for m in SWEEP:
            times[f"fit_{m}"].append(engine(x, y, m) / m)
            times[f"loop_{m}"].append(bare_loop(x, y, students=m) / m)
    ms = {name: 1000 * statistics.median(values) / steps for name, values in times.items()}
    best = min(SWEEP, key=lambda m: ms[f"loop_{m}"])
    return {"benchmark": "training_step_sweep", "threads": torch.get_num_threads(), "repeats": repeats, "steps": steps,
            "ms_per_student_step": {"single": round(ms["single"], 3),
                                    "fit": {m: round(ms[f"fit_{m}"], 3) for m in SWEEP},
                                    "stacked_loop": {m: round(ms[f"loop_{m}"], 3) for m in SWEEP}},
            "best_stack": best, "best_separate_over_stack": round(ms["single"] / ms[f"loop_{best}"], 3),
            "best_separate_over_fit_stack": round(ms["single"] / min(ms[f"fit_{m}"] for m in SWEEP), 3)}


def layout_line(x: torch.Tensor, y: torch.Tensor, repeats: int, steps: int, students: int) -> dict:
    """Milliseconds per student step of the bare loop over a stack, with channels-last and with NCHW weights (the
    batches channels-last in both): a grey batch is contiguous in both layouts, so the weights pick the kernels."""
    times: dict[str, list[float]] = {"channels_last": [], "nchw_weights": []}
    for _ in range(repeats):
        times["channels_last"].append(bare_loop(x, y, students=students))
        times["nchw_weights"].append(bare_loop(x, y, students=students, layout=torch.contiguous_format))
    ms = {name: 1000 * statistics.median(values) / steps / students for name, values in times.items()}
    return {"benchmark": "training_step_layout", "students": students, "threads": torch.get_num_threads(), "repeats": repeats,
            "ms_per_student_step": {k: round(v, 3) for k, v in ms.items()}, "nchw_over_channels_last": round(ms["nchw_weights"] / ms["channels_last"], 3)}


def compile_line(x: torch.Tensor, y: torch.Tensor, repeats: int, steps: int, students: int) -> dict:
    """Milliseconds per student step of the bare loop over one student and over a stack, eager and with
    ``torch.compile`` of the model (forward and backward; compilation and warm-up excluded, one epoch each first), plus
    the compiled stack's ``separate_over_stack`` against the eager single student: whether compilation lifts the bound."""
    runs = {}
    for name, m, compiled in (("single_eager", 1, False), ("single_compiled", 1, True), ("stack_eager", students, False), ("stack_compiled", students, True)):
        model = bare_model(0, m)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        runs[name] = (torch.compile(model) if compiled else model, optimizer, m)
    start = time.perf_counter()
    for model, optimizer, m in runs.values():
        bare_epoch(model, optimizer, x, y, 0, m)  # compilation and warm-up
    compile_seconds = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(repeats):
        for name, (model, optimizer, m) in runs.items():
            times[name].append(bare_epoch(model, optimizer, x, y, repeat + 1, m) / m)
    ms = {name: 1000 * statistics.median(values) / steps for name, values in times.items()}
    return {"benchmark": "training_step_compile", "students": students, "threads": torch.get_num_threads(), "repeats": repeats,
            "warm_up_and_compile_s": round(compile_seconds, 1), "ms_per_student_step": {k: round(v, 3) for k, v in ms.items()},
            "compiled_over_eager_stack": round(ms["stack_compiled"] / ms["stack_eager"], 3),
            "separate_over_compiled_stack": round(ms["single_eager"] / ms["stack_compiled"], 3)}


def operator_times(students: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Self CPU milliseconds per operator over ``PROFILED_STEPS`` plain training steps of one SmallCNN or a stack."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = SmallCNN(CONFIG) if students == 1 else StackedCNN(CONFIG, students, seed=0)
    model = model.to(memory_format=SmallCNN.memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    batches = [(x[i * BATCH : (i + 1) * BATCH].contiguous(memory_format=SmallCNN.memory_format), y[i * BATCH : (i + 1) * BATCH])
               for i in range(PROFILED_STEPS + 2)]

    def step(xb: torch.Tensor, yb: torch.Tensor) -> None:
        out = model(xb)
        out = out if out.ndim == 3 else out[None]
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.repeat(out.shape[0]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for xb, yb in batches[:2]:  # warm-up
        step(xb, yb)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for xb, yb in batches[2:]:
            step(xb, yb)
    return {e.key: e.self_cpu_time_total / 1000 for e in prof.key_averages()}


def profile_line(students: int, x: torch.Tensor, y: torch.Tensor, top: int = 10) -> dict:
    """The operators that dominate the stack's step, each with its share and its cost relative to one student."""
    single, stack = operator_times(1, x, y), operator_times(students, x, y)
    total_single, total_stack = sum(single.values()), sum(stack.values())
    ops = sorted(stack, key=stack.get, reverse=True)[:top]
    return {"benchmark": "training_step_profile", "students": students, "steps": PROFILED_STEPS, "threads": torch.get_num_threads(),
            "self_cpu_ms": {"single": round(total_single, 1), "stack": round(total_stack, 1)},
            "stack_over_single": round(total_stack / total_single, 2),
            "operators": {op: {"share_of_stack": round(stack[op] / total_stack, 3), "stack_over_single": round(stack[op] / single[op], 2) if single.get(op) else None}
                          for op in ops}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2; 1 when another job holds a core)")
    parser.add_argument("--profile", action="store_true", help="also print the per-operator profile of one student and of the stack")
    parser.add_argument("--layout", action="store_true", help="also time the stack with NCHW weights against channels-last ones")
    parser.add_argument("--sweep", action="store_true", help=f"also print the per-student step time of stacks of {SWEEP} students")
    parser.add_argument("--compile", action="store_true", help="also time the bare loop with torch.compile against eager, one student and the stack")
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
    if args.profile:
        print(json.dumps(profile_line(args.students, x, y)))
    if args.layout:
        print(json.dumps(layout_line(x, y, args.repeats, args.steps, args.students)))
    if args.sweep:
        print(json.dumps(sweep_line(x, y, args.repeats, args.steps)))
    if args.compile:
        print(json.dumps(compile_line(x, y, args.repeats, args.steps, args.students)))
    return result


if __name__ == "__main__":
    main()
