"""The registry of distillation objectives: one contract, ``objective(outputs, batch) -> (B,)`` per-example losses.

``outputs`` are one student's (B, K) outputs and ``batch`` a :class:`kdlib.train.Batch` (labels, -1 for unlabelled,
teacher logits, positions in the training set, named fields). An objective that needs per-example data of its own
(SLaM's alpha, LELP's subclass targets, per-example weights) holds it aligned with the training set and reads the
rows ``batch.index``. Register a class or factory with ``@register_objective("name")``; build it with
``get_objective("name", **params)``.
"""

from __future__ import annotations

from typing import Callable

from kdlib.registry import Registry
from kdlib.train import Objective

_OBJECTIVES: Registry[Callable[..., Objective]] = Registry("objective")
register_objective = _OBJECTIVES.register  # class or factory decorator: make a name buildable with get_objective()
available_objectives = _OBJECTIVES.names


def get_objective(name: str, **params) -> Objective:
    """Build the objective ``name`` with ``params``; unknown names raise a ``ValueError`` listing the known ones."""
    return _OBJECTIVES.get(name)(**params)
