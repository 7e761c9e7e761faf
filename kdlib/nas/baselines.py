"""The baselines, constrained to the cost limit: random search and regularized evolution (Real et al., 2019).

Both only ever evaluate architectures within the limit, so at an equal number of evaluations they spend none of
it on the over-limit models LayerNAS uses to judge prefixes.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from kdlib.nas.search import Evaluator, register_strategy
from kdlib.nas.space import Arch, SearchSpace

POPULATION = 10
TOURNAMENT = 3


@register_strategy("random")
def random_search(space: SearchSpace, evaluate: Evaluator, cost_limit: float, rng: np.random.Generator, batch: int = 1) -> dict:
    """Evaluate architectures drawn uniformly from those within the limit until the budget is spent, ``batch`` at a
    time (one call of the space's ``evaluate_many``, e.g. one stacked training run; the draws do not depend on it)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    order = rng.permutation(space.feasible(cost_limit))  # without replacement; stops at the budget (or when all are seen)
    for start in range(0, len(order), batch):
        evaluate.many([space.unravel(flat) for flat in order[start : start + batch]])
    return {}


def mutate(space: SearchSpace, parent: Arch, cost_limit: float, rng: np.random.Generator, tries: int = 100) -> Arch:
    """Change one uniformly chosen layer to another uniformly chosen option; redraw until the child is valid and
    within the limit (after ``tries`` failures, a uniform feasible architecture)."""
    for _ in range(tries):
        layer = int(rng.integers(len(space.layers)))
        n_options = len(space.layers[layer].options)
        if n_options < 2:
            continue
        option = int(rng.integers(n_options - 1))
        option += option >= parent[layer]  # any option but the parent's
        child = parent[:layer] + (option,) + parent[layer + 1 :]
        if space.is_valid(child) and space.cost(child) <= cost_limit:
            return child
    return space.sample(rng, cost_limit)


def crossover(space: SearchSpace, first: Arch, second: Arch, cost_limit: float, rng: np.random.Generator) -> Arch:
    """Uniform crossover: each layer from either parent with probability 1/2 (``first`` if the child is not valid or
    over the limit)."""
    child = tuple(a if take else b for a, b, take in zip(first, second, rng.random(len(first)) < 0.5))
    return child if space.is_valid(child) and space.cost(child) <= cost_limit else first


@register_strategy("evolution")
def regularized_evolution(
    space: SearchSpace, evaluate: Evaluator, cost_limit: float, rng: np.random.Generator,
    population_size: int = POPULATION, tournament_size: int = TOURNAMENT, batch: int = 1, crossover_rate: float = 0.0,
) -> dict:
    """Regularized (aging) evolution, Real et al. 2019, Algorithm 1.

    A population of ``population_size`` random feasible architectures; then repeatedly: sample ``tournament_size``
    members, mutate the best one (one layer), add the child and remove the oldest member. With ``batch`` > 1 a
    generation of ``batch`` children is drawn from the same population and evaluated together (the paper's parallel
    workers; e.g. one stacked training run), then added, and as many of the oldest removed. With ``crossover_rate`` > 0
    a child first crosses the winners of two tournaments with that probability (then mutates). ``batch=1`` and
    ``crossover_rate=0`` are Algorithm 1 exactly.
    """
    if population_size < 1 or not 1 <= tournament_size <= population_size:
        raise ValueError(f"need population_size >= tournament_size >= 1, got {population_size}, {tournament_size}")
    if batch < 1 or not 0 <= crossover_rate <= 1:
        raise ValueError(f"need batch >= 1 and crossover_rate in [0, 1], got {batch}, {crossover_rate}")

    def winner() -> Arch:
        contenders = rng.choice(len(population), size=tournament_size, replace=False)
        return population[max(contenders, key=lambda i: population[i][1])][0]

    def child() -> Arch:
        parent = winner()
        if crossover_rate and rng.random() < crossover_rate:
            parent = crossover(space, parent, winner(), cost_limit, rng)
        return mutate(space, parent, cost_limit, rng)

    initial = [space.sample(rng, cost_limit) for _ in range(population_size)]
    population: deque[tuple[Arch, float]] = deque(zip(initial, (e.reward for e in evaluate.many(initial))))
    while True:
        children = [child() for _ in range(batch)]
        for arch, result in zip(children, evaluate.many(children)):
            population.append((arch, result.reward))
            population.popleft()
