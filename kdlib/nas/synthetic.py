"""A synthetic layer-wise space whose layers are independent: reward and cost are sums of per-layer terms.

It is where LayerNAS's assumption holds exactly (a change to an earlier layer does not change what later layers
contribute), so with one bucket per integer cost it must find the exact constrained optimum; the tests and the
notebook's evaluation-count demonstration use it.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from kdlib.nas.space import Layer, SearchSpace, table_space


def additive_space(n_layers: int, n_options: int, seed: int = 0, max_layer_cost: int = 3) -> SearchSpace:
    """Per-layer rewards ~ U(0, 1) / L and integer costs in 0..``max_layer_cost``, both summed over layers.

    The grid of all n_options^n_layers architectures is materialised, so keep it below ~10^6.
    """
    if n_layers < 1 or n_options < 1 or n_options**n_layers > 2_000_000:
        raise ValueError(f"need 1 <= n_options^n_layers <= 2e6, got {n_options}^{n_layers}")
    rng = np.random.default_rng(seed)
    layer_rewards = rng.random((n_layers, n_options)) / n_layers
    layer_costs = rng.integers(0, max_layer_cost + 1, size=(n_layers, n_options)).astype(float)
    costs = reduce(np.add.outer, layer_costs)
    rewards = reduce(np.add.outer, layer_rewards)
    layers = [Layer(f"l{i + 1}", tuple(f"o{j}" for j in range(n_options))) for i in range(n_layers)]
    return table_space(f"additive {n_options}^{n_layers}", layers, np.asarray(costs), np.asarray(rewards), np.asarray(rewards),
                       cost_name="cost", description="independent layers: additive reward and integer cost")
