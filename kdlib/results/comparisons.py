"""Comparisons of methods over seeds run in pairs: paired and pooled differences with t-intervals, a method's
share of a ceiling's gain, Welch differences, difference tables, and per-task estimates for graded claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from kdlib.results.estimates import Estimate
from kdlib.results.records import Record, to_frame


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over seeds run in pairs (same data, same initialisation), with a 95% t-interval."""

    a: str
    b: str
    n: int
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float

    @property
    def a_beats_b(self) -> bool:
        """True when the whole 95% interval of the paired difference lies above zero."""
        return bool(self.ci_low > 0)

    def __str__(self) -> str:
        return f"{self.a} - {self.b} = {self.mean_diff:+.4f} (95% CI {self.ci_low:+.4f} .. {self.ci_high:+.4f}, n={self.n})"

    def points(self) -> str:
        """The difference and its interval in percentage points of accuracy, e.g. ``+1.20 pp [+0.31, +2.09]``."""
        return f"{100 * self.mean_diff:+.2f} pp [{100 * self.ci_low:+.2f}, {100 * self.ci_high:+.2f}]"

    def estimate(self, scale: float = 100.0) -> Estimate:
        """The paired difference as one task's :class:`Estimate`, in units of ``scale`` (pp of accuracy by default)."""
        return Estimate(scale * self.mean_diff, scale * self.std_diff / np.sqrt(self.n), self.n - 1, self.n)


def paired_comparison(records: Iterable[Record] | pd.DataFrame, a: str, b: str, confidence: float = 0.95, **where: str) -> PairedComparison:
    """Compare methods ``a`` and ``b`` on seeds present for both, within the records matching ``where``.

    ``confidence`` sets the t-interval's level (e.g. ``1 - 0.05 / m`` for a Bonferroni correction over m tests).

    Raises:
        ValueError: no seed has both methods.
    """
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    for column, value in where.items():
        frame = frame[frame[column] == value]
    per_seed = frame.pivot_table(index=["setting", "seed"] if "setting" not in where else ["seed"], columns="method", values="value")
    if a not in per_seed or b not in per_seed:
        raise ValueError(f"methods {a!r} and {b!r} must both appear in the records (found {list(per_seed.columns)})")
    diff = (per_seed[a] - per_seed[b]).dropna().to_numpy()
    if len(diff) == 0:
        raise ValueError(f"no seed has both {a!r} and {b!r}")
    n, mean = len(diff), float(diff.mean())
    std = float(diff.std(ddof=1)) if n > 1 else float("nan")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return PairedComparison(a, b, n, mean, std, mean - half, mean + half)


def _test_accuracy(records: Iterable[Record] | pd.DataFrame, experiments: Sequence[str], metric: str = "test_accuracy") -> pd.DataFrame:
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    return frame[(frame.metric == metric) & frame.experiment.isin(list(experiments))]


def pooled_comparison(
    records: Iterable[Record] | pd.DataFrame, a: str, b: str, experiments: Sequence[str], confidence: float = 0.95, metric: str = "test_accuracy"
) -> PairedComparison:
    """``a - b`` in ``metric`` (test accuracy by default) over every (experiment, seed) pair of ``experiments``: seeds
    pair within an experiment, and the pairs of several experiments are pooled."""
    frame = _test_accuracy(records, experiments, metric)
    return paired_comparison(frame.assign(setting=frame.experiment), a, b, confidence=confidence)


def headroom_comparison(
    records: Iterable[Record] | pd.DataFrame, method: str, baseline: str, ceiling: str, experiments: Sequence[str], fraction: float = 0.5,
    metric: str = "test_accuracy",
) -> PairedComparison:
    """``method - (baseline + fraction * (ceiling - baseline))`` in ``metric``, paired per (experiment, seed) and
    pooled: above zero means ``method`` recovers more than ``fraction`` of the ceiling's gain over the baseline."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    per_seed = _test_accuracy(records, experiments, metric).pivot_table(index=["experiment", "seed"], columns="method", values="value")
    missing = {method, baseline, ceiling} - set(per_seed.columns)
    if missing:
        raise ValueError(f"methods {sorted(missing)} do not appear in the records of {list(experiments)}")
    target = per_seed[baseline] + fraction * (per_seed[ceiling] - per_seed[baseline])
    both = pd.concat({method: per_seed[method], "target": target}, axis=1).dropna().reset_index()
    long = both.melt(id_vars=["experiment", "seed"], var_name="method", value_name="value").assign(setting=lambda f: f.experiment)
    comparison = paired_comparison(long, method, "target")
    return PairedComparison(method, f"{baseline} + {fraction:g} ({ceiling} - {baseline})", *[getattr(comparison, f) for f in ("n", "mean_diff", "std_diff", "ci_low", "ci_high")])


def per_seed_differences(records: Iterable[Record] | pd.DataFrame, a: str, b: str, experiments: Sequence[str]) -> np.ndarray:
    """The paired test-accuracy differences ``a - b``, one per (experiment, seed) of ``experiments``."""
    per_seed = _test_accuracy(records, experiments).pivot_table(index=["experiment", "seed"], columns="method", values="value")
    return (per_seed[a] - per_seed[b]).dropna().to_numpy()


def difference_table(
    records: Iterable[Record] | pd.DataFrame, pairs: Sequence[tuple[str, str]], experiments: Sequence[str], pooled: Sequence[str] = (),
    metric: str = "test_accuracy",
) -> pd.DataFrame:
    """Paired ``a - b`` in ``metric`` as "diff [95% CI]" in pp: rows "a − b", columns experiments (+ "pooled").

    Cells where an experiment lacks one of the two methods are left empty.
    """
    columns = [(e, [e]) for e in experiments] + ([("pooled", list(pooled))] if pooled else [])
    table = {}
    for a, b in pairs:
        row = {}
        for label, subset in columns:
            try:
                c = pooled_comparison(records, a, b, subset, metric=metric)
            except ValueError:
                continue
            row[label] = f"{100 * c.mean_diff:+.2f} [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]"
        table[f"{a} − {b}"] = row
    return pd.DataFrame.from_dict(table, orient="index").reindex(columns=[label for label, _ in columns]).fillna("")


def welch_difference(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """``mean(first) - mean(second)`` for two independent samples, with a Welch 95% t-interval (NaN when a sample has
    one value or both have no spread)."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) == 0 or len(second) == 0:
        raise ValueError("both samples must be non-empty")
    change = float(first.mean() - second.mean())
    estimate = Estimate.welch(first, second) if min(len(first), len(second)) > 1 else None
    if estimate is None or estimate.se == 0:
        return {"difference": change, "ci_low": float("nan"), "ci_high": float("nan")}
    low, high = estimate.interval(0.95)
    return {"difference": change, "ci_low": low, "ci_high": high}


def paired_estimates(records: Iterable[Record] | pd.DataFrame, a: str, b: str, experiments: Sequence[str], metric: str = "test_accuracy",
                     scale: float = 100.0) -> dict[str, Estimate]:
    """``a - b`` in ``metric`` per experiment (seeds paired within it), as the per-task evidence of a graded claim.

    Raises:
        ValueError: an experiment where fewer than 2 seeds have both methods.
    """
    return {e: pooled_comparison(records, a, b, [e], metric=metric).estimate(scale) for e in experiments}
