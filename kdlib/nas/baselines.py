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
def random_search(space: SearchSpace, evaluate: Evaluator, cost_limit: float, rng: np.random.Generator) -> dict:
    """Evaluate architectures drawn uniformly from those within the limit until the budget is spent."""
    feasible = space.feasible(cost_limit)
    for flat in rng.permutation(feasible):  # without replacement; stops at the budget (or when all are seen)
        evaluate(space.unravel(flat))
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


@register_strategy("evolution")
def regularized_evolution(
    space: SearchSpace, evaluate: Evaluator, cost_limit: float, rng: np.random.Generator,
    population_size: int = POPULATION, tournament_size: int = TOURNAMENT,
) -> dict:
    """Regularized (aging) evolution, Real et al. 2019, Algorithm 1.

    A population of ``population_size`` random feasible architectures; then repeatedly: sample ``tournament_size``
    members, mutate the best one (one layer), add the child and remove the oldest member.
    """
    if population_size < 1 or not 1 <= tournament_size <= population_size:
        raise ValueError(f"need population_size >= tournament_size >= 1, got {population_size}, {tournament_size}")
    population: deque[tuple[Arch, float]] = deque()
    while len(population) < population_size:
        arch = space.sample(rng, cost_limit)
        population.append((arch, evaluate(arch).reward))
    while True:
        contenders = rng.choice(len(population), size=tournament_size, replace=False)
        parent = population[max(contenders, key=lambda i: population[i][1])][0]
        child = mutate(space, parent, cost_limit, rng)
        population.append((child, evaluate(child).reward))
        population.popleft()
