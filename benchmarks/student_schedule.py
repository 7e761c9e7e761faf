"""Accuracy and cost of a semi-supervised student schedule (a probe run before fixing notebooks 02-04's regime).

    python benchmarks/student_schedule.py fashion_mnist 100 1000 s12,s40,m40
    python benchmarks/student_schedule.py sst2 30 1000 s12 --pool 4000

Builds one full-profile task of the harness (``kdlib.experiments.unlabelled``; use a pilot seed, 1000-1002, never a
claim's) and trains labels only, hard and soft distillation and the corrected-label ceiling as one stack for each
configuration ``<size><epochs>``: size ``s`` is the harness's student (8/16 CNN, or the token CNN on SST-2), ``m`` a
wider one (16/32 CNN; the token CNN with 128 filters); patience a quarter of the epochs (at least 4). Prints the
teacher's accuracy, then per configuration the seconds, the updates run and, per method, (best validation accuracy,
test accuracy, best step).
"""

from __future__ import annotations

import argparse
import time

from kdlib.distill import get_objective
from kdlib.experiments import slam, unlabelled
from kdlib.train import TrainConfig, accuracy

METHODS = ("labels only", "soft distillation", "hard distillation", slam.CEILING)
CNN_SIZES = {"s": {"widths": (8, 16), "embed_dim": 32}, "m": {"widths": (16, 32), "embed_dim": 64}}
TOKEN_SIZES = {"s": dict(unlabelled.TOKEN_CNN), "m": {**dict(unlabelled.TOKEN_CNN), "filters": 128, "hidden": 64}}


def configured_student(dataset: str, name: str) -> unlabelled.SemiSupervisedStudent:
    """The student of configuration ``name`` (e.g. ``"s40"``) on ``dataset``."""
    size, epochs = name[0], int(name[1:])
    if size not in CNN_SIZES:
        raise ValueError(f"configuration {name!r}: the size must be one of {sorted(CNN_SIZES)}")
    train = TrainConfig(epochs=epochs, patience=max(4, epochs // 4), cosine=True, **unlabelled.STUDENT_OPTIMISER)
    if dataset == "sst2":
        return unlabelled.SemiSupervisedStudent("token_cnn", train, tuple(TOKEN_SIZES[size].items()))
    return unlabelled.SemiSupervisedStudent("cnn", train, tuple(CNN_SIZES[size].items()), augment=dataset == "cifar10")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("n_labelled", type=int)
    parser.add_argument("seed", type=int)
    parser.add_argument("configs", help="comma-separated <size><epochs>, e.g. s12,s40,m40")
    parser.add_argument("--pool", type=int, default=None, help="|U| (default: the full profile's)")
    args = parser.parse_args(argv)
    if args.pool is not None:
        unlabelled.POOL["full"][args.dataset] = args.pool
    task = unlabelled.make_task(args.dataset, args.n_labelled, args.seed, "full")
    print(task.name, "seed", args.seed, "teacher val / test", round(task.teacher_accuracy("val"), 4), round(task.teacher_accuracy("test"), 4), flush=True)
    every = slam.methods(task)
    for name in args.configs.split(","):
        student = configured_student(args.dataset, name)
        start = time.perf_counter()
        model, history = unlabelled.fit_students(task, student, [get_objective(**every[m]) for m in METHODS], task.training_set(), args.seed)
        test = accuracy(model, task.x_test, task.y_test)
        rows = {m: (round(float(history.best_val_accuracy[i]), 4), round(float(test[i]), 4), int(history.best_step[i])) for i, m in enumerate(METHODS)}
        print(name, f"{time.perf_counter() - start:.0f} s", "updates", history.steps, rows, flush=True)


if __name__ == "__main__":
    main()
