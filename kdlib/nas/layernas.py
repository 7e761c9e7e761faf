"""LayerNAS (Fan et al., 2023, arXiv 2304.11517): layer-by-layer search that keeps, for every cost bucket, the k
best models found so far — O(H·|S|·L) evaluations instead of |S|^L.

Algorithm 1 of the paper could not be read; this is the reconstruction of the notes (06_layernas.md §3), made
limit-aware as the notes' NB-201 pilot recommends. The open choices are fixed here, before any result:

* **H = 8 cost buckets, k = 2 models kept per bucket** (notes: H = 8 in the digits pilot, k in 1-3, "a few").
* **Unsearched layers hold the base model's option, the "largest" one** (each layer's option with the highest mean
  cost): partial models are judged with full capacity downstream, so a cheap default layer cannot bottleneck them
  (the failure mode the notes' pilot A found with the cheapest default).
* **Layer order**: the space's own order (NB-201: the table's edge order; NAS-Bench-Graph: the link pattern, then
  the operation of nodes 1-4; the CNN: input to output).
* **Buckets**: H equal-width intervals of the *cheapest-completion* cost of a candidate (the cheapest architecture
  that shares its searched layers), spanning [cheapest architecture, cost limit]. A candidate whose cheapest
  completion exceeds the limit is never evaluated.
* **Ties** in reward within a bucket are broken at random (the seed); otherwise the search is deterministic.

Pseudo-code (notes §3, with the choices above)::

    M_0 = {m0}                                   # m0: every layer at its base option
    for l = 1..L:
        M_l = {}                                 # bucket h -> the k best (reward, model)
        for m in M_{l-1}, s in S_l:
            m' = m with layer l set to s         # layers > l stay at the base option
            c = cheapest completion cost of m'   # layers <= l fixed
            if c > cost_limit: skip
            h = clip(floor(H (c - c_min) / (cost_limit - c_min)), 0, H - 1)
            insert (reward(m'), m') into M_l[h]; keep the top k
    return the best-reward evaluated model with cost <= cost_limit

Each layer evaluates at most k·H·(|S_l| - 1) new models (setting layer l to its base option gives back m itself),
so the total is at most |S_1| + sum_l min(kH, #prefixes)·(|S_l| - 1) <= k·H·|S|·L.
"""

from __future__ import annotations

import math

import numpy as np

from kdlib.nas.search import Evaluator, register_strategy
from kdlib.nas.space import Arch, SearchSpace

H_BUCKETS = 8
K_PER_BUCKET = 2
BASE_POLICY = "largest"


def cost_bucket(cost: float, low: float, high: float, n_buckets: int) -> int:
    """``clip(floor(H (c - low) / (high - low)), 0, H - 1)``; everything in bucket 0 when ``high <= low``."""
    if high <= low:
        return 0
    return int(min(max(math.floor(n_buckets * (cost - low) / (high - low)), 0), n_buckets - 1))


def evaluation_bound(space: SearchSpace, H: int = H_BUCKETS, k: int = K_PER_BUCKET) -> int:
    """The most distinct evaluations LayerNAS can make: |S_1| + sum_{l>=2} min(kH, prod_{j<l} |S_j|)·(|S_l| - 1)."""
    sizes = [len(layer.options) for layer in space.layers]
    bound, prefixes = sizes[0], sizes[0]
    for size in sizes[1:]:
        bound += min(k * H, prefixes) * (size - 1)
        prefixes *= size
    return bound


def coarse_bound(space: SearchSpace, H: int = H_BUCKETS, k: int = K_PER_BUCKET) -> int:
    """The paper's O(H·|S|·L) as a number: k·H·max_l |S_l|·L."""
    return k * H * max(len(layer.options) for layer in space.layers) * len(space.layers)


@register_strategy("layernas")
def layernas(
    space: SearchSpace, evaluate: Evaluator, cost_limit: float, rng: np.random.Generator,
    H: int = H_BUCKETS, k: int = K_PER_BUCKET, base: str = BASE_POLICY,
) -> dict:
    """Search ``space`` layer by layer under ``cost <= cost_limit`` (see the module docstring for the algorithm).

    Returns:
        ``kept_per_layer`` (|M_l| after each layer), ``candidates`` (models scored, including re-reads of known
        ones), the settings and the base architecture.
    """
    if int(H) != H or H < 1 or int(k) != k or k < 1:
        raise ValueError(f"H and k must be positive integers, got H={H}, k={k}")
    low = space.min_cost
    m0 = space.base_arch(base)
    kept: list[Arch] = [m0]
    kept_per_layer, candidates = [], 0
    for depth, layer in enumerate(space.layers, start=1):
        buckets: dict[int, list[tuple[float, float, Arch]]] = {}
        for model in kept:
            for option in range(len(layer.options)):
                candidate = model[: depth - 1] + (option,) + model[depth:]
                cheapest = space.min_completion_cost(candidate, depth)
                if cheapest > cost_limit or not space.is_valid(candidate):
                    continue  # no completion fits the limit, or the model with base layers does not exist
                candidates += 1
                reward = evaluate(candidate).reward
                bucket = buckets.setdefault(cost_bucket(cheapest, low, cost_limit, H), [])
                bucket.append((reward, float(rng.random()), candidate))
                bucket.sort(reverse=True)
                del bucket[k:]
        kept = [model for h in sorted(buckets) for _, _, model in buckets[h]]
        kept_per_layer.append(len(kept))
    return {"kept_per_layer": kept_per_layer, "candidates": candidates, "H": H, "k": k, "base": space.describe(m0)}
