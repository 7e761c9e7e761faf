"""Distillation objectives behind one registry: ``get_objective(name, **params)``."""

from kdlib.distill import dist, dkd, kd  # noqa: F401  (registers "ce", "kd", "kd_sum", "dkd", "dist")
from kdlib.distill.registry import Objective, available_objectives, get_objective, register_objective

__all__ = ["Objective", "available_objectives", "get_objective", "register_objective"]
