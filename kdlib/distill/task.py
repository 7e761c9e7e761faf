"""A distillation task: fixed data and teacher outputs; one call trains one student with one method and seed.

A task is the cell function of :func:`kdlib.grid.run_grid`: ``task(method=..., seed=...) -> {metric: value}``.
Its :meth:`DistillationTask.fingerprint` goes into the grid's cache key, so a change of data, teacher outputs,
student or recipe re-runs the cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from kdlib.cache import fingerprint
from kdlib.distill.registry import get_objective
from kdlib.train import Augment, TrainConfig, evaluate, fit, set_seed


@dataclass
class DistillationTask:
    """Everything one student run needs.

    Attributes:
        name: label for progress bars.
        x_train, y_train, teacher_train: student inputs, labels (``-1`` = unlabelled) and teacher logits.
        x_val, y_val: labelled validation set for early stopping.
        x_test, y_test: held-out test set (only ever evaluated, never selected on).
        make_student: builds a fresh student (called after seeding).
        student_description: plain-data description of the student, for the cache key.
        methods: method name -> objective spec, e.g. ``{"kd": {"name": "kd", "temperature": 4.0}}``.
        config: the student's optimisation recipe.
        augment: optional batch augmentation.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    teacher_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    make_student: Callable[[], nn.Module]
    student_description: Mapping[str, Any]
    methods: Mapping[str, Mapping[str, Any]]
    config: TrainConfig
    augment: Augment | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.x_train)
        if not (len(self.y_train) == len(self.teacher_train) == n):
            raise ValueError(f"x_train, y_train and teacher_train must align, got {n}, {len(self.y_train)}, {len(self.teacher_train)}")
        for method, objective in self.methods.items():
            if "name" not in objective:
                raise ValueError(f"method {method!r} must name its objective, got {dict(objective)}")

    def fingerprint(self) -> str:
        """Content hash of the task (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(
                {
                    "data": [self.x_train, self.y_train, self.teacher_train, self.x_val, self.y_val, self.x_test, self.y_test],
                    "student": dict(self.student_description),
                    "methods": {k: dict(v) for k, v in self.methods.items()},
                    "config": self.config,
                    "augment": getattr(self.augment, "__qualname__", None),
                }
            )
        return self._fingerprint

    def __call__(self, method: str, seed: int) -> dict[str, float]:
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r} for task {self.name!r}; available: {sorted(self.methods)}")
        params = dict(self.methods[method])
        objective = get_objective(params.pop("name"), **params)
        set_seed(seed)
        student = self.make_student()
        history = fit(
            student, objective, self.x_train, (self.y_train, self.teacher_train),
            config=self.config, seed=seed, val=(self.x_val, self.y_val), augment=self.augment,
            desc=f"{self.name} {method} s{seed}",
            progress=False,  # the grid shows one bar for all cells
        )
        return {
            "test_accuracy": evaluate(student, self.x_test, self.y_test),
            "val_accuracy": history.best_val_accuracy,
            "steps": float(history.steps),
        }
