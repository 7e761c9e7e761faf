"""One entry point for every strategy: ``search(space, strategy, budget, cost_limit, seed)``.

A strategy is registered by name (``@register_strategy("random")``) and called as
``strategy(space, evaluate, cost_limit, rng, **params) -> info``; it reads only the rewards that ``evaluate``
returns and stops when the evaluator says the budget is spent. The budget counts *distinct* architectures
evaluated (by the space's key): re-reading a known one is free, as with a cache of trained models.

Every strategy's pick is chosen the same way: the architecture with the highest reward (validation accuracy)
among those it evaluated whose cost is within the limit (ties: the first evaluated); its ``report`` (test accuracy)
is what the notebooks compare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from kdlib.nas.space import Arch, Evaluation, SearchSpace
from kdlib.registry import Registry


class StopSearch(Exception):
    """Raised by the evaluator when the budget is spent (or the strategy keeps re-reading known architectures)."""


class Evaluator:
    """Counts distinct evaluations, enforces the budget and keeps the history in evaluation order."""

    def __init__(self, space: SearchSpace, budget: int, max_calls: int | None = None) -> None:
        self.space = space
        self.budget = budget
        self.max_calls = max_calls if max_calls is not None else 1000 + 100 * budget
        self.calls = 0
        self.known: dict = {}
        self.archs: list[Arch] = []
        self.evaluations: list[Evaluation] = []

    @property
    def n_evaluations(self) -> int:
        return len(self.archs)

    def __call__(self, arch: Sequence[int]) -> Evaluation:
        return self.many([arch])[0]

    def many(self, archs: Sequence[Sequence[int]]) -> list[Evaluation]:
        """Evaluate a batch: the distinct new architectures in one call of the space's ``evaluate_many`` (one by one
        without it), known ones from memory. New ones beyond the budget are not evaluated: the others are recorded,
        then :class:`StopSearch` is raised."""
        archs = [self.space.check(arch) for arch in archs]
        for arch in archs:
            if not self.space.is_valid(arch):
                raise ValueError(f"{self.space.name}: architecture {arch} is not valid in this space")
        self.calls += len(archs)
        if self.calls > self.max_calls:
            raise StopSearch(f"{self.max_calls} calls: the strategy keeps re-reading known architectures")
        fresh: dict = {}  # the first of each new identity, in order
        for arch in archs:
            identity = self.space.identity(arch)
            if identity not in self.known and identity not in fresh:
                fresh[identity] = arch
        new = list(fresh.values())
        chosen = new[: max(0, self.budget - self.n_evaluations)]
        if chosen:
            results = self.space.evaluate_many(chosen) if self.space.evaluate_many is not None else [self.space.evaluate(a) for a in chosen]
            if len(results) != len(chosen):
                raise ValueError(f"{self.space.name}: evaluate_many returned {len(results)} evaluations for {len(chosen)} architectures")
            for arch, result in zip(chosen, results):
                self.known[self.space.identity(arch)] = result
                self.archs.append(arch)
                self.evaluations.append(result)
        if len(chosen) < len(new):
            raise StopSearch("budget spent")
        return [self.known[self.space.identity(arch)] for arch in archs]


Strategy = Callable[..., dict]
_STRATEGIES: Registry[Strategy] = Registry("strategy")
register_strategy = _STRATEGIES.register  # decorator: make a name usable in search()
available_strategies = _STRATEGIES.names


@dataclass(frozen=True)
class SearchResult:
    """One search run: its pick and the full evaluation history.

    Attributes:
        arch: the pick (``None`` if no evaluated architecture is within the limit).
        cost, reward, report: the pick's cost, validation and test accuracy (nan without a pick).
        n_evaluations: distinct architectures evaluated.
        history_archs, history_costs, history_rewards, history_reports: every evaluation, in order.
        info: what the strategy reports about itself (e.g. LayerNAS's models kept per layer).
    """

    space: str
    strategy: str
    seed: int
    budget: int
    cost_limit: float
    arch: Arch | None
    cost: float
    reward: float
    report: float
    n_evaluations: int
    history_archs: tuple[Arch, ...]
    history_costs: np.ndarray
    history_rewards: np.ndarray
    history_reports: np.ndarray
    info: dict
    seconds: float

    @property
    def feasible(self) -> np.ndarray:
        return self.history_costs <= self.cost_limit

    def trace(self) -> np.ndarray:
        """After each evaluation i, the report of the best-reward feasible architecture so far (nan before the first)."""
        out = np.full(self.n_evaluations, np.nan)
        best_reward, best_report = -np.inf, np.nan
        for i, (ok, reward, report) in enumerate(zip(self.feasible, self.history_rewards, self.history_reports)):
            if ok and reward > best_reward:
                best_reward, best_report = reward, report
            out[i] = best_report
        return out

    def front(self, levels: Sequence[float]) -> np.ndarray:
        """For each cost level, the report of the best-reward architecture evaluated with cost <= level (nan if none).

        One run, read at every cost level: the accuracy-vs-cost front it traced.
        """
        out = np.full(len(levels), np.nan)
        for j, level in enumerate(levels):
            ok = np.flatnonzero(self.history_costs <= level)
            if len(ok):
                out[j] = self.history_reports[ok[np.argmax(self.history_rewards[ok])]]
        return out


def search(
    space: SearchSpace, strategy: str, budget: int, cost_limit: float | None = None, seed: int = 0, **params
) -> SearchResult:
    """Run ``strategy`` on ``space`` with at most ``budget`` distinct evaluations, under ``cost <= cost_limit``.

    Args:
        space: the search space.
        strategy: a registered name (see :func:`available_strategies`): ``"layernas"``, ``"random"``, ``"evolution"``.
        budget: maximum number of distinct architectures evaluated (> 0).
        cost_limit: the cost constraint; ``None`` means unconstrained (the most expensive architecture).
        seed: seeds the strategy's generator (sampling, mutation, tie-breaks).
        params: the strategy's own settings (LayerNAS requires ``base=`` and ``bucketing=``; ``H``, ``k`` have defaults).

    Returns:
        The run's pick and history.

    Raises:
        ValueError: unknown strategy, budget not a positive integer, or a cost limit below the cheapest architecture.
    """
    run_strategy = _STRATEGIES.get(strategy)
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0:
        raise ValueError(f"budget must be a positive integer (distinct evaluations), got {budget!r}")
    limit = space.max_cost if cost_limit is None else float(cost_limit)
    if not limit >= space.min_cost:
        raise ValueError(
            f"cost_limit {cost_limit} is infeasible for {space.name}: the cheapest architecture costs {space.min_cost:g} {space.cost_name}"
        )
    evaluator = Evaluator(space, int(budget))
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    info: dict = {}
    try:
        info = run_strategy(space, evaluator, limit, rng, **params) or {}
    except StopSearch as stop:
        info = {"stopped": str(stop)}
    seconds = time.perf_counter() - start
    costs = np.array([space.cost(a) for a in evaluator.archs], dtype=float)
    rewards = np.array([e.reward for e in evaluator.evaluations], dtype=float)
    reports = np.array([e.report for e in evaluator.evaluations], dtype=float)
    ok = np.flatnonzero(costs <= limit)
    best = ok[np.argmax(rewards[ok])] if len(ok) else None
    return SearchResult(
        space=space.name, strategy=strategy, seed=seed, budget=int(budget), cost_limit=limit,
        arch=evaluator.archs[best] if best is not None else None,
        cost=float(costs[best]) if best is not None else float("nan"),
        reward=float(rewards[best]) if best is not None else float("nan"),
        report=float(reports[best]) if best is not None else float("nan"),
        n_evaluations=evaluator.n_evaluations, history_archs=tuple(evaluator.archs), history_costs=costs,
        history_rewards=rewards, history_reports=reports, info=info, seconds=seconds,
    )


def exhaustive(space: SearchSpace, cost_limit: float | None = None) -> dict:
    """The oracle: evaluate every valid architecture within the limit.

    Returns the best-reward one (what an exhaustive search would select: ``arch``, ``cost``, ``reward``, ``report``)
    and the best report of any feasible architecture (``best_report``: the ceiling no selection rule can beat).
    """
    limit = space.max_cost if cost_limit is None else float(cost_limit)
    archs = space.all_archs(limit)
    if not archs:
        raise ValueError(f"cost_limit {cost_limit} is infeasible for {space.name}")
    results = [space.evaluate(a) for a in archs]
    rewards = np.array([r.reward for r in results])
    reports = np.array([r.report for r in results])
    best = int(np.argmax(rewards))
    return {"arch": archs[best], "cost": space.cost(archs[best]), "reward": float(rewards[best]), "report": float(reports[best]),
            "best_report": float(reports.max()), "n_feasible": len(archs)}
