"""Search spaces as data: L layers, a list of options per layer, a cost for every architecture, an evaluator.

An architecture is a tuple of option indices, one per layer. Every space here is small enough to hold the cost of
every architecture in an array of shape ``(|S_1|, ..., |S_L|)`` (at most a few 10^4 entries), so the cheapest
completion of a partly fixed architecture is a minimum over a slice. Costs (parameters, MACs, latency) are known
without training; only ``evaluate`` (a table lookup or a short training run) counts as an evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import numpy as np

Arch = tuple[int, ...]
BASE_POLICIES = ("largest", "cheapest")


@dataclass(frozen=True)
class Layer:
    """One searchable position and its options (e.g. an NB-201 edge and its five operations)."""

    name: str
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.options) < 1 or len(set(self.options)) != len(self.options):
            raise ValueError(f"layer {self.name!r} needs distinct options, got {self.options}")


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one architecture returns.

    Attributes:
        reward: the search signal (validation accuracy); strategies only ever read this.
        report: the reported metric of a pick (test accuracy); equal to ``reward`` when a table has one accuracy.
    """

    reward: float
    report: float


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """A layer-wise search space.

    Attributes:
        name: short label used in tables and figures.
        layers: the L searchable layers, in the order LayerNAS searches them.
        costs: array of shape ``(|S_1|, ..., |S_L|)``: the cost of every architecture, ``inf`` for invalid ones.
        evaluate: ``evaluate(arch) -> Evaluation`` (a lookup or a training run).
        cost_name: what the cost measures, e.g. ``"parameters"``.
        key: maps an architecture to its identity; architectures with the same key (isomorphic duplicates of a
            benchmark) are evaluated once. Default: the architecture itself.
        description: one line for the notebook.
        evaluate_many: optional ``evaluate_many(archs) -> [Evaluation, ...]``: several architectures in one go (e.g. a
            generation of candidates trained as one stacked run); the evaluator uses it for a strategy's batches.
    """

    name: str
    layers: tuple[Layer, ...]
    costs: np.ndarray
    evaluate: Callable[[Arch], Evaluation]
    cost_name: str = "cost"
    key: Callable[[Arch], Hashable] | None = None
    description: str = ""
    evaluate_many: Callable[[Sequence[Arch]], list[Evaluation]] | None = None
    _valid: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = tuple(len(layer.options) for layer in self.layers)
        if not self.layers:
            raise ValueError("a search space needs at least one layer")
        if self.costs.shape != shape:
            raise ValueError(f"costs must have shape {shape} (options per layer), got {self.costs.shape}")
        valid = np.isfinite(self.costs)
        if not valid.any():
            raise ValueError(f"space {self.name!r} has no valid architecture")
        object.__setattr__(self, "_valid", valid)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.costs.shape

    @property
    def size(self) -> int:
        """Number of valid architectures (before merging duplicates by ``key``)."""
        return int(self._valid.sum())

    @property
    def min_cost(self) -> float:
        return float(self.costs[self._valid].min())

    @property
    def max_cost(self) -> float:
        return float(self.costs[self._valid].max())

    def check(self, arch: Sequence[int]) -> Arch:
        """``arch`` as a tuple of ints; raises ``ValueError`` for a wrong length or an option out of range."""
        arch = tuple(map(int, arch))
        shape = self.costs.shape
        if len(arch) != len(shape):
            raise ValueError(f"{self.name}: an architecture has {len(self.layers)} layers, got {len(arch)}: {arch}")
        if not all(0 <= a < n for a, n in zip(arch, shape)):  # the hot path of every search: one pass, no lookups
            layer, a = next((layer, a) for layer, a in zip(self.layers, arch) if not 0 <= a < len(layer.options))
            raise ValueError(f"{self.name}: layer {layer.name!r} has options 0..{len(layer.options) - 1}, got {a}")
        return arch

    def identity(self, arch: Arch) -> Hashable:
        return self.key(arch) if self.key is not None else arch

    def cost(self, arch: Sequence[int]) -> float:
        return float(self.costs[self.check(arch)])

    def is_valid(self, arch: Sequence[int]) -> bool:
        return bool(self._valid[self.check(arch)])

    def min_completion_cost(self, arch: Sequence[int], depth: int) -> float:
        """The cheapest valid architecture that agrees with ``arch`` on its first ``depth`` layers (``inf`` if none)."""
        arch = self.check(arch)
        if not 0 <= depth <= len(arch):
            raise ValueError(f"depth must lie in 0..{len(arch)}, got {depth}")
        return float(np.min(self.costs[arch[:depth]]))

    def feasible(self, cost_limit: float) -> np.ndarray:
        """Flat indices (into ``costs``) of the valid architectures with cost <= ``cost_limit``."""
        return np.flatnonzero(self._valid.ravel() & (self.costs.ravel() <= cost_limit))

    def unravel(self, flat_index: int) -> Arch:
        return tuple(int(i) for i in np.unravel_index(int(flat_index), self.shape))

    def sample(self, rng: np.random.Generator, cost_limit: float) -> Arch:
        """A valid architecture with cost <= ``cost_limit``, uniformly at random."""
        feasible = self.feasible(cost_limit)
        if len(feasible) == 0:
            raise ValueError(f"{self.name}: no architecture costs <= {cost_limit}")
        return self.unravel(rng.choice(feasible))

    def all_archs(self, cost_limit: float = np.inf) -> list[Arch]:
        """Every valid architecture with cost <= ``cost_limit``, in index order."""
        return [self.unravel(i) for i in self.feasible(cost_limit)]

    def cost_quantile(self, q: float) -> float:
        """The ``q``-quantile of the valid architectures' costs (a cost limit that a fraction ``q`` satisfies)."""
        if not 0 < q <= 1:
            raise ValueError(f"q must lie in (0, 1], got {q}")
        return float(np.quantile(self.costs[self._valid], q, method="higher"))

    def base_arch(self, policy: str = "largest") -> Arch:
        """The architecture whose layers LayerNAS has not searched yet hold.

        ``"largest"``: each layer's option with the highest mean cost over the valid architectures (the widest,
        most expressive choice); ``"cheapest"``: the lowest. Ties go to the first option. If that combination is not
        a valid architecture (e.g. NAS-Bench-Graph's all-``skip`` network), the valid architecture that agrees with it
        on the most layers (then the dearest, resp. cheapest, of those).
        """
        if policy not in BASE_POLICIES:
            raise ValueError(f"base policy must be one of {BASE_POLICIES}, got {policy!r}")
        finite = np.where(self._valid, self.costs, 0.0)
        arch = []
        for axis in range(len(self.layers)):
            others = tuple(a for a in range(len(self.layers)) if a != axis)
            mean = finite.sum(axis=others) / np.maximum(self._valid.sum(axis=others), 1)
            arch.append(int(np.argmax(mean) if policy == "largest" else np.argmin(mean)))
        if self._valid[tuple(arch)]:
            return tuple(arch)
        grid = np.indices(self.shape)
        agree = sum(grid[axis] == option for axis, option in enumerate(arch))  # layers each architecture shares with it
        best = np.flatnonzero((self._valid & (agree == agree[self._valid].max())).ravel())  # in index order
        costs = self.costs.ravel()[best]
        return self.unravel(best[int(np.argmax(costs) if policy == "largest" else np.argmin(costs))])  # ties: the first

    def describe(self, arch: Sequence[int]) -> str:
        """``layer=option`` pairs, e.g. ``"e1=nor_conv_3x3 e2=skip ..."``."""
        return " ".join(f"{layer.name}={layer.options[a]}" for layer, a in zip(self.layers, self.check(arch)))


def table_space(
    name: str,
    layers: Sequence[Layer],
    costs: np.ndarray,
    rewards: np.ndarray,
    reports: np.ndarray,
    cost_name: str,
    keys: np.ndarray | None = None,
    description: str = "",
) -> SearchSpace:
    """A space whose evaluations are lookups in arrays shaped like ``costs`` (a tabular benchmark)."""
    rewards, reports = np.asarray(rewards, dtype=float), np.asarray(reports, dtype=float)
    if rewards.shape != costs.shape or reports.shape != costs.shape:
        raise ValueError(f"rewards {rewards.shape} and reports {reports.shape} must match costs {costs.shape}")

    def evaluate(arch: Arch) -> Evaluation:
        return Evaluation(float(rewards[arch]), float(reports[arch]))

    key = (lambda arch: int(keys[arch])) if keys is not None else None
    return SearchSpace(name, tuple(layers), np.asarray(costs, dtype=float), evaluate, cost_name, key, description)
