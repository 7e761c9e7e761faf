"""A registry of distillation objectives sharing one interface.

An objective is a callable ``objective(student_logits, labels, teacher_logits) -> loss`` where ``labels`` holds
``-1`` for unlabelled examples (their label term is dropped). Register one with ``@register_objective("name")``
and build it with ``get_objective("name", **params)``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch


class Objective(Protocol):
    def __call__(self, student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor: ...


_OBJECTIVES: dict[str, Callable[..., Objective]] = {}


def register_objective(name: str) -> Callable[[Callable[..., Objective]], Callable[..., Objective]]:
    """Class or factory decorator: make ``name`` buildable with :func:`get_objective`."""

    def decorator(factory: Callable[..., Objective]) -> Callable[..., Objective]:
        if name in _OBJECTIVES:
            raise ValueError(f"objective {name!r} is registered twice")
        _OBJECTIVES[name] = factory
        return factory

    return decorator


def available_objectives() -> list[str]:
    return sorted(_OBJECTIVES)


def get_objective(name: str, **params) -> Objective:
    """Build the objective ``name`` with ``params``; unknown names raise a ``ValueError`` listing the known ones."""
    if name not in _OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; available: {', '.join(available_objectives())}")
    return _OBJECTIVES[name](**params)
