"""Distillation objectives behind one registry: ``get_objective(name, **params)``; selection rules in ``active``."""

from kdlib.distill import dist, dkd, kd, kdzero, l2t_dln, lelp, slam, subclass, teacher_labels, weighted  # noqa: F401  (registers the objectives)
from kdlib.distill.registry import available_objectives, get_objective, register_objective
from kdlib.train import Batch, Objective

__all__ = ["Batch", "Objective", "available_objectives", "get_objective", "register_objective"]
