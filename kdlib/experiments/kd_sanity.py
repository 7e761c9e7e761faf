"""Notebook 00's end-to-end check: a student alone vs the same student with vanilla KD (Hinton et al. 2015).

The student sees ``n_train`` labelled examples drawn from its teacher's training subset; KD adds the teacher's
softened logits on the same examples. Temperature and alpha are Hinton's usual values, not tuned. Students train for a
fixed number of epochs with a cosine schedule to zero (a plateau, not an early-stopping lottery) and keep their best
validation step. A replicate
redraws the student's examples and its initialisation and batch order (the shared teachers stay fixed: they are what
this notebook checks). One grid cell trains both methods' students for one (task, replicate). The pilot replicates
that fixed the number of replicates (:mod:`kdlib.claims.kd_sanity`) have seeds of their own and are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.tasks import TransferTask, text_transfer_task, vision_transfer_task
from kdlib.teachers import text_teacher, vision_teacher
from kdlib.train import TrainConfig

METHODS = {
    "student alone": {"name": "ce"},
    "student + KD": {"name": "kd", "temperature": 4.0, "alpha": 0.9},
}
TASKS = {"vision": "Fashion-MNIST (CNN student)", "text": "SST-2 (bag-of-tokens student)"}
PILOT_SEEDS = tuple(range(1000, 1005))  # the pilot's replicates: never reused in a claim
PROTOCOL_VERSION = 3  # bump when a choice the cells' arguments do not name changes
VISION_VALIDATION = 1000  # validation images for model selection (as many as the student's training examples; 5,000 cost more than training)
# A 3-block CNN (16/32/64 channels, 64-d embedding; 4x fewer parameters than its teacher). The previous regime's 2-block
# (8/16) student reached only ~65-69 % on Fashion-MNIST (below a linear model): too small to use what the teacher knows.
VISION_STUDENT = {"widths": (16, 32, 64), "embed_dim": 64}


@dataclass(frozen=True)
class SanitySettings:
    """The numbers of one profile: student examples per task, maximum epochs, replicates, the teachers' profile."""

    examples: tuple[tuple[str, int], ...]
    epochs: int
    replicates: int
    teachers: str


def settings(profile: str, replicates: int) -> SanitySettings:
    """The settings of ``profile``; ``replicates`` is the declared number (the quick profile runs 2)."""
    examples, epochs = pick(profile, {"quick": ((("vision", 500), ("text", 500)), 8), "full": ((("vision", 1000), ("text", 2000)), 30)})
    return SanitySettings(examples, epochs, pick(profile, {"quick": 2, "full": replicates}), teachers=profile)


@lru_cache(maxsize=8)
def build_task(kind: str, n_train: int, epochs: int, teachers: str, seed: int) -> TransferTask:
    """The vision (Fashion-MNIST, small CNN) or text (SST-2, bag of tokens) task of one replicate."""
    if kind == "vision":
        config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=None, cosine=True)
        return vision_transfer_task(vision_teacher("fashion_mnist", teachers), n_train, METHODS, config, subset_seed=seed, n_val=VISION_VALIDATION,
                                    student=VISION_STUDENT)
    if kind == "text":
        config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=0.0, patience=None, cosine=True)
        return text_transfer_task(text_teacher("sst2", teachers), n_train, METHODS, config, subset_seed=seed)
    raise ValueError(f"kind must be 'vision' or 'text', got {kind!r}")


def train_cell(kind: str, n_train: int, epochs: int, teachers: str, seed: int) -> list[dict]:
    """One grid cell: both methods' students on one task and replicate."""
    return build_task(kind, n_train, epochs, teachers, seed).train(list(METHODS), seed)


def cells(chosen: SanitySettings, seeds: tuple[int, ...] | range) -> list[dict]:
    """The grid's cells: every task x replicate seed."""
    return [{"kind": kind, "n_train": n, "epochs": chosen.epochs, "teachers": chosen.teachers, "seed": seed}
            for kind, n in chosen.examples for seed in seeds]


def context(chosen: SanitySettings) -> dict:
    """What the cells depend on beyond their arguments: the teachers, the methods and the protocol's fixed choices."""
    return {"teachers": [vision_teacher("fashion_mnist", chosen.teachers).key, text_teacher("sst2", chosen.teachers).key], "methods": METHODS,
            "vision_validation": VISION_VALIDATION, "version": PROTOCOL_VERSION}


def to_records(frame: pd.DataFrame) -> list[Record]:
    """Test and validation accuracy per (task, method, replicate); replicates pair across methods within a task."""
    return [Record(TASKS[row.kind], row.method, f"n={row.n_train}", int(row.seed), metric, float(getattr(row, metric)))
            for row in frame.itertuples() for metric in ("test_accuracy", "val_accuracy")]
