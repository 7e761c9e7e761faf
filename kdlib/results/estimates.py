"""The evidence a claim is graded on: one task's estimate with its standard error, tasks pooled with equal weights,
and the outcome of a deterministic check."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats


def _satterthwaite(variances: Sequence[float], dfs: Sequence[float]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance terms (their sum of dfs when all are 0)."""
    denominator = sum(v**2 / d for v, d in zip(variances, dfs))
    return sum(variances) ** 2 / denominator if denominator > 0 else float(sum(dfs))


@dataclass(frozen=True)
class Estimate:
    """One task's estimate in the claim's unit: ``mean`` with standard error ``se`` on ``df`` degrees of freedom,
    from ``n`` replicates (pairs for a paired estimate, both samples together for a Welch one)."""

    mean: float
    se: float
    df: float
    n: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.se) and self.se >= 0 and self.df > 0 and self.n >= 1):
            raise ValueError(f"an estimate needs a finite mean, se >= 0, df > 0 and n >= 1, got {self}")

    @classmethod
    def paired(cls, differences: Sequence[float]) -> Estimate:
        """The mean of paired differences (one per replicate): se = sd / sqrt(n), n - 1 degrees of freedom.

        Raises:
            ValueError: fewer than 2 differences.
        """
        values = np.asarray(differences, dtype=float)
        if len(values) < 2:
            raise ValueError(f"an estimate needs at least 2 replicates, got {len(values)}")
        return cls(float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))), len(values) - 1, len(values))

    @classmethod
    def welch(cls, first: Sequence[float], second: Sequence[float]) -> Estimate:
        """``mean(first) - mean(second)`` for two independent samples: Welch's se and Satterthwaite's df."""
        # the estimate of one sample's mean is the paired estimate of its values
        return cls.paired(first).minus(cls.paired(second))

    def minus(self, other: Estimate) -> Estimate:
        """This estimate minus an independent one (se added in quadrature, Welch-Satterthwaite df)."""
        variances = (self.se**2, other.se**2)
        return Estimate(self.mean - other.mean, math.sqrt(sum(variances)), _satterthwaite(variances, (self.df, other.df)), self.n + other.n)

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-sided t-interval at ``confidence`` (e.g. 0.95)."""
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
        half = float(stats.t.ppf(0.5 + confidence / 2, self.df)) * self.se
        return self.mean - half, self.mean + half

    def p_value(self, null: float = 0.0) -> float:
        """Two-sided p-value of the t-test of ``mean == null``."""
        if self.se == 0:
            return 0.0 if self.mean != null else 1.0
        return float(2 * stats.t.sf(abs(self.mean - null) / self.se, self.df))

    @property
    def spread(self) -> float:
        """The per-replicate spread the estimate implies, se * sqrt(n) (the sd of a paired estimate's differences)."""
        return self.se * math.sqrt(self.n)


def pooled(per_task: Mapping[str, Estimate]) -> Estimate:
    """The equal-weight mean of the task means (tasks are not seeds: each task counts once, whatever its replicates).

    se = sqrt(sum of se_t^2) / T with Welch-Satterthwaite degrees of freedom; one task is returned as it is.

    Raises:
        ValueError: no task.
    """
    if not per_task:
        raise ValueError("nothing to pool: no task")
    estimates = list(per_task.values())
    if len(estimates) == 1:
        return estimates[0]
    variances = [e.se**2 for e in estimates]
    t = len(estimates)
    return Estimate(
        float(np.mean([e.mean for e in estimates])), math.sqrt(sum(variances)) / t, _satterthwaite(variances, [e.df for e in estimates]),
        sum(e.n for e in estimates),
    )


@dataclass(frozen=True)
class Deterministic:
    """The outcome of a deterministic check (e.g. an evaluation-count bound): whether it holds, and what was measured."""

    holds: bool
    value: str
