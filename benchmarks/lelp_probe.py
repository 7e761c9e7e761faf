"""Does a longer schedule give notebook 01's oracles headroom over vanilla KD? (a probe run before fixing the regime)

    python benchmarks/lelp_probe.py cifar10 6,30 [--seed 2000] [--n-transfer 10000] [--teacher-epochs 8] [--student-widths 16,32,64]

The committed run of notebook 01 trained its students 6 epochs and found both oracles below vanilla KD on validation,
so the headroom gate left every binarised task out. This builds the full profile's binarised task (``kdlib``'s
cached teacher; ``--n-transfer`` images), then for each schedule (epochs, cosine to zero) trains one stack of labels
only, vanilla KD, head-matched KD, LELP, the uniform split and both oracles at the last run's chosen settings
(tau = 2, S = 5, beta = 1) on a probe seed (never a claim's), and prints per method (best validation accuracy, test
accuracy, best step) with the seconds and steps of the stack. ``--teacher-epochs`` trains the binarised teacher
longer than the profile's recipe (a new teacher, cached under its own key).
"""

from __future__ import annotations

import argparse
import time

from kdlib import teachers
from kdlib.experiments import lelp

VARIANTS = [lelp.Variant("labels only"), lelp.Variant("vanilla KD", temperature=2.0), lelp.Variant("head-matched KD", 5, temperature=2.0),
            lelp.Variant("LELP", 5, 1.0, 2.0), lelp.Variant("uniform split", 5, temperature=2.0),
            lelp.Variant(lelp.ORACLE_UNIFORM, 5, temperature=2.0), lelp.Variant(lelp.ORACLE_CENTROID, 5, temperature=2.0)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("cifar10", "fashion_mnist"))
    parser.add_argument("schedules", help="comma-separated epoch counts, e.g. 6,30")
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--n-transfer", type=int, default=10_000)
    parser.add_argument("--teacher-epochs", type=int, default=None, help="the binarised teacher's epochs (default: the full profile's)")
    parser.add_argument("--student-widths", default=None, help="the student CNN's channel widths, e.g. 16,32,64 (default: the profile's)")
    parser.add_argument("--embed-dim", type=int, default=None, help="the student's embedding size (default: the profile's)")
    args = parser.parse_args(argv)
    if args.teacher_epochs is not None:
        teachers._VISION[args.dataset]["full"]["binary_epochs"] = args.teacher_epochs
    plan = next(p for p in lelp.settings("full", replicates=1).tasks if p.key == f"{args.dataset} mod2")
    student = dict(plan.spec["student"])
    if args.student_widths:
        student["widths"] = tuple(int(w) for w in args.student_widths.split(","))
    if args.embed_dim:
        student["embed_dim"] = args.embed_dim
    spec = {**plan.spec, "n_transfer": args.n_transfer, "n_fit": max(args.n_transfer, plan.spec["n_fit"]), "student": student}
    task = lelp.build_task(spec)
    print(task.name, "teacher test", round(task.teacher_test_accuracy, 4), "transfer", len(task.y_transfer), flush=True)
    for epochs in (int(e) for e in args.schedules.split(",")):
        start = time.perf_counter()
        rows = lelp.train_cell(spec, [vars(v) for v in VARIANTS], args.seed, {**plan.train, "epochs": epochs})
        result = {r["method"]: (round(r["val_accuracy"], 4), round(r["test_accuracy"], 4), r["best_step"]) for r in rows}
        print(f"{epochs} epochs", f"{time.perf_counter() - start:.0f} s", "steps", rows[0]["steps"], result, flush=True)


if __name__ == "__main__":
    main()
