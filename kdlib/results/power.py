"""How many replicates a claim needs, fixed before its run from a pilot's per-replicate spread.

A spread measured on 3 seeds can be off by a factor of 2-3, so the plan uses its upper 80 % confidence bound, and
asks for a 95 % half-width of at most 0.7 x SESOI: small enough that an effect of the SESOI is told from zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

TARGET = 0.7  # 95 % half-width as a fraction of the SESOI
SPREAD_CONFIDENCE = 0.8  # the pilot spread's upper confidence bound


def upper_spread(sd: float, n: int, confidence: float = SPREAD_CONFIDENCE) -> float:
    """The upper ``confidence`` bound of a standard deviation ``sd`` measured on ``n`` replicates (chi-square).

    Raises:
        ValueError: ``n < 2``, ``sd < 0`` or ``confidence`` outside (0, 1).
    """
    if n < 2 or sd < 0 or not 0 < confidence < 1:
        raise ValueError(f"need n >= 2, sd >= 0 and confidence in (0, 1), got n={n}, sd={sd}, confidence={confidence}")
    return sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - confidence, n - 1))


def replicates_for(sd_pilot: float, n_pilot: int, sesoi: float, tasks: int = 1, cap: int | None = None, target: float = TARGET) -> int:
    """The replicates per task for a pooled 95 % half-width of at most ``target * sesoi``.

    The smallest n >= 2 with ``t(0.975, n*tasks - tasks) * s_up / sqrt(n * tasks) <= target * sesoi``, where s_up is
    the pilot spread's upper 80 % bound (:func:`upper_spread`); ``cap`` (the budget) is returned when more would be
    needed, and the caller records that power is short (:class:`PowerPlan` does).

    Raises:
        ValueError: a non-positive ``sesoi``, ``target`` or ``tasks``, or a ``cap`` below 2.
    """
    if sesoi <= 0 or target <= 0 or tasks < 1 or (cap is not None and cap < 2):
        raise ValueError(f"need sesoi > 0, target > 0, tasks >= 1 and cap >= 2, got sesoi={sesoi}, target={target}, tasks={tasks}, cap={cap}")
    spread, goal = upper_spread(sd_pilot, n_pilot), target * sesoi
    # t >= z, so no n below the normal-theory answer can do: start there
    n = max(2, math.floor((stats.norm.ppf(0.975) * spread / goal) ** 2 / tasks))
    while stats.t.ppf(0.975, n * tasks - tasks) * spread / math.sqrt(n * tasks) > goal:
        if cap is not None and n >= cap:
            return cap
        n += 1
    return n if cap is None else min(n, cap)


@dataclass(frozen=True)
class PowerPlan:
    """A claim's replicate plan: the pilot it came from, the replicates planned and whether the budget capped them."""

    sd_pilot: float
    n_pilot: int
    sesoi: float
    tasks: int
    cap: int | None
    replicates: int
    capped: bool

    @classmethod
    def from_pilot(cls, sd_pilot: float, n_pilot: int, sesoi: float, tasks: int = 1, cap: int | None = None) -> PowerPlan:
        """Plan from a pilot's per-replicate spread (see :func:`replicates_for`)."""
        needed = replicates_for(sd_pilot, n_pilot, sesoi, tasks)
        planned = needed if cap is None else min(needed, cap)
        return cls(sd_pilot, n_pilot, sesoi, tasks, cap, planned, needed > planned)
