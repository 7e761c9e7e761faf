"""A registry of distillation objectives sharing one interface.

An objective is a callable ``objective(student_logits, labels, teacher_logits) -> loss`` where ``labels`` holds
``-1`` for unlabelled examples (their label term is dropped). Register one with ``@register_objective("name")``
and build it with ``get_objective("name", **params)``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch

from kdlib.registry import Registry


class Objective(Protocol):
    def __call__(self, student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor: ...


_OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")
register_objective = _OBJECTIVES.register  # class or factory decorator: make a name buildable with get_objective()
available_objectives = _OBJECTIVES.names


def get_objective(name: str, **params) -> Objective:
    """Build the objective ``name`` with ``params``; unknown names raise a ``ValueError`` listing the known ones."""
    return _OBJECTIVES.get(name)(**params)
