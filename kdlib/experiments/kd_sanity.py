"""Notebook 00's end-to-end check: a student alone vs the same student with vanilla KD (Hinton et al. 2015).

The student sees ``n_train`` labelled examples drawn from its teacher's training subset; KD adds the teacher's
softened logits on the same examples. Temperature and alpha are Hinton's usual values, not tuned. One cell of the
grid trains both methods' students for one (task, seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from kdlib.profiles import pick
from kdlib.tasks import TransferTask, text_transfer_task, vision_transfer_task
from kdlib.teachers import text_teacher, vision_teacher
from kdlib.train import TrainConfig

METHODS = {
    "student alone": {"name": "ce"},
    "student + KD": {"name": "kd", "temperature": 4.0, "alpha": 0.9},
}
TASKS = {"Fashion-MNIST (CNN student)": "vision", "SST-2 (bag-of-tokens student)": "text"}


@dataclass(frozen=True)
class SanitySettings:
    """The numbers of one profile: student examples per task, maximum epochs, seeds."""

    examples: dict
    epochs: int
    seeds: int
    teachers: str  # the profile of the shared teachers


SETTINGS = {
    "quick": SanitySettings(examples={"vision": 500, "text": 500}, epochs=15, seeds=2, teachers="quick"),
    "full": SanitySettings(examples={"vision": 1000, "text": 2000}, epochs=100, seeds=3, teachers="full"),
}


def settings(profile: str, seeds: int | None = None) -> SanitySettings:
    """The settings of ``profile`` (``seeds`` overrides the full profile's number of seeds)."""
    chosen = pick(profile, SETTINGS)
    return chosen if seeds is None or profile == "quick" else SanitySettings(chosen.examples, chosen.epochs, seeds, chosen.teachers)


@lru_cache(maxsize=4)
def build_task(kind: str, n_train: int, epochs: int, teachers: str) -> TransferTask:
    """The vision (Fashion-MNIST, small CNN) or text (SST-2, bag of tokens) task; teachers come from the cache."""
    if kind == "vision":
        config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=8)
        return vision_transfer_task(vision_teacher("fashion_mnist", teachers), n_train, METHODS, config)
    if kind == "text":
        config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=0.0, patience=6)
        return text_transfer_task(text_teacher("sst2", teachers), n_train, METHODS, config)
    raise ValueError(f"kind must be 'vision' or 'text', got {kind!r}")


def train_cell(kind: str, n_train: int, epochs: int, teachers: str, seed: int) -> list[dict]:
    """One grid cell: both methods' students on one task and seed."""
    return build_task(kind, n_train, epochs, teachers).train(list(METHODS), seed)
