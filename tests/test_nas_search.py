"""The search API, LayerNAS's exactness and evaluation count, and the baselines, on small synthetic spaces."""

import itertools

import numpy as np
import pytest

from kdlib.nas import additive_space, available_strategies, coarse_bound, evaluation_bound, exhaustive, search
from kdlib.nas.layernas import cost_bucket
from kdlib.nas.space import Layer, table_space


def bits_space(n_layers: int, seed: int = 0):
    """Two options per layer costing 0 and 1 (summed), random additive rewards."""
    rng = np.random.default_rng(seed)
    layer_rewards = rng.random((n_layers, 2))
    shape = (2,) * n_layers
    costs, rewards = np.empty(shape), np.empty(shape)
    for arch in np.ndindex(shape):
        costs[arch] = sum(arch)
        rewards[arch] = sum(layer_rewards[i, a] for i, a in enumerate(arch))
    layers = [Layer(f"l{i}", ("off", "on")) for i in range(n_layers)]
    return table_space("bits", layers, costs, rewards, rewards, cost_name="cost")


def test_strategies_are_registered():
    assert {"layernas", "random", "evolution"} <= set(available_strategies())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("quantile", [0.2, 0.5, 1.0])
def test_layernas_finds_the_exact_optimum_when_layers_are_independent(seed, quantile):
    space = additive_space(4, 3, seed=seed, max_layer_cost=3)
    limit = space.cost_quantile(quantile)
    # one bucket per integer cost between the cheapest architecture and the limit: LayerNAS becomes an exact DP
    n_buckets = int(limit - space.min_cost) + 1
    result = search(space, "layernas", budget=10_000, cost_limit=limit, seed=seed, H=n_buckets, k=1)
    oracle = exhaustive(space, limit)
    assert result.cost <= limit
    assert result.reward == pytest.approx(oracle["reward"])


def test_layernas_evaluation_count_matches_the_formula():
    for n_layers in (3, 5, 7):
        space = bits_space(n_layers)
        # base = "largest" puts every unsearched layer "on"; H = L + 1 gives every prefix cost 0..l its own bucket,
        # so |M_l| = l + 1 and N = |S_1| + sum_{l>=2} |M_{l-1}| (|S_l| - 1) = 2 + sum_{l=2}^{L} l = L(L+1)/2 + 1
        result = search(space, "layernas", budget=10_000, seed=0, H=n_layers + 1, k=1)
        assert result.info["kept_per_layer"] == [l + 1 for l in range(1, n_layers + 1)]
        assert result.n_evaluations == n_layers * (n_layers + 1) // 2 + 1
        assert result.n_evaluations <= evaluation_bound(space, H=n_layers + 1, k=1)


def test_layernas_evaluations_grow_with_depth_not_with_the_space():
    counts = []
    for n_layers in range(2, 9):
        space = additive_space(n_layers, 4, seed=n_layers)
        result = search(space, "layernas", budget=10**6, cost_limit=space.cost_quantile(0.5), seed=0, H=8, k=2)
        kept = [1] + result.info["kept_per_layer"][:-1]
        sizes = [len(layer.options) for layer in space.layers]
        # every candidate is new except "layer l at its base option", which is the kept model itself
        assert result.n_evaluations <= sizes[0] + sum(m * (s - 1) for m, s in zip(kept[1:], sizes[1:]))
        assert result.n_evaluations <= evaluation_bound(space, 8, 2) <= coarse_bound(space, 8, 2) == 2 * 8 * 4 * n_layers
        counts.append(result.n_evaluations)
    assert counts[-1] < 4**8 / 100  # 65,536 architectures, a few hundred evaluations at most


def test_cost_bucket_edges():
    assert cost_bucket(0.0, 0.0, 10.0, 8) == 0
    assert cost_bucket(10.0, 0.0, 10.0, 8) == 7
    assert cost_bucket(5.0, 0.0, 10.0, 8) == 4
    assert cost_bucket(3.0, 3.0, 3.0, 8) == 0


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_baselines_spend_the_budget_within_the_limit(strategy):
    space = additive_space(5, 3, seed=1)
    limit = space.cost_quantile(0.4)
    result = search(space, strategy, budget=20, cost_limit=limit, seed=3)
    assert result.n_evaluations == 20
    assert (result.history_costs <= limit).all()
    assert len(set(result.history_archs)) == 20
    best = np.argmax(np.where(result.feasible, result.history_rewards, -np.inf))
    assert result.arch == result.history_archs[best]
    assert search(space, strategy, budget=20, cost_limit=limit, seed=3).history_archs == result.history_archs


def test_random_search_stops_when_every_feasible_architecture_is_seen():
    space = additive_space(3, 2, seed=0)
    limit = space.cost_quantile(0.5)
    result = search(space, "random", budget=1000, cost_limit=limit, seed=0)
    assert result.n_evaluations == len(space.feasible(limit))
    assert result.reward == pytest.approx(exhaustive(space, limit)["reward"])


def test_evolution_stops_on_a_tiny_space():
    space = additive_space(2, 2, seed=0)
    result = search(space, "evolution", budget=50, seed=0)
    assert result.n_evaluations == space.size


def test_layernas_respects_a_small_budget():
    space = additive_space(5, 3, seed=0)
    result = search(space, "layernas", budget=4, seed=0)
    assert result.n_evaluations == 4
    assert result.info == {"stopped": "budget spent"}


def test_duplicates_by_key_are_evaluated_once():
    layers = [Layer("a", ("x", "y")), Layer("b", ("x", "y"))]
    costs = np.array([[1.0, 2.0], [2.0, 3.0]])
    rewards = np.array([[0.1, 0.5], [0.5, 0.9]])
    keys = np.array([[0, 1], [1, 2]])  # (0, 1) and (1, 0) are the same network
    space = table_space("dup", layers, costs, rewards, rewards, "cost", keys=keys)
    result = search(space, "random", budget=10, seed=0)
    assert result.n_evaluations == 3


def test_trace_and_front():
    space = additive_space(4, 3, seed=2)
    result = search(space, "random", budget=15, cost_limit=space.cost_quantile(0.5), seed=0)
    trace = result.trace()
    assert len(trace) == 15 and np.all(np.diff(trace[~np.isnan(trace)]) >= 0)  # report = reward here: monotone
    assert trace[-1] == pytest.approx(result.report)
    front = result.front([space.min_cost - 1, space.max_cost])
    assert np.isnan(front[0]) and front[1] == pytest.approx(result.history_reports[np.argmax(result.history_rewards)])


def test_bad_inputs_raise_clear_errors():
    space = additive_space(3, 3, seed=0)
    with pytest.raises(ValueError, match="unknown strategy 'annealing'"):
        search(space, "annealing", budget=10)
    for budget in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="budget must be a positive integer"):
            search(space, "random", budget=budget)
    with pytest.raises(ValueError, match="infeasible.*cheapest architecture costs"):
        search(space, "layernas", budget=10, cost_limit=space.min_cost - 1)
    with pytest.raises(ValueError, match="3 layers, got 2"):
        space.cost((0, 1))
    with pytest.raises(ValueError, match="options 0..2, got 3"):
        space.cost((0, 1, 3))
    with pytest.raises(ValueError, match="H and k must be positive integers"):
        search(space, "layernas", budget=10, H=0)
    with pytest.raises(ValueError, match="base policy"):
        search(space, "layernas", budget=10, base="median")


def test_space_helpers():
    space = bits_space(3)
    assert space.size == 8 and space.min_cost == 0 and space.max_cost == 3
    assert space.base_arch("largest") == (1, 1, 1) and space.base_arch("cheapest") == (0, 0, 0)
    assert space.min_completion_cost((1, 0, 1), 1) == 1 and space.min_completion_cost((1, 0, 1), 3) == 2
    rng = np.random.default_rng(0)
    assert all(space.cost(space.sample(rng, 1.0)) <= 1 for _ in range(20))
    assert sorted(space.all_archs(1.0)) == sorted(a for a in itertools.product((0, 1), repeat=3) if sum(a) <= 1)


def test_invalid_architectures_are_never_feasible():
    layers = [Layer("a", ("x", "y")), Layer("b", ("x", "y"))]
    costs = np.array([[1.0, 2.0], [np.inf, 3.0]])  # (1, 0) does not exist
    rewards = np.array([[0.1, 0.5], [0.0, 0.9]])
    space = table_space("holes", layers, costs, rewards, rewards, "cost")
    assert space.size == 3 and (1, 0) not in space.all_archs() and not space.is_valid((1, 0))
    assert space.min_completion_cost((1, 0), 1) == 3.0
    for strategy in ("layernas", "random", "evolution"):
        result = search(space, strategy, budget=10, seed=0)
        assert (1, 0) not in result.history_archs and result.arch == (1, 1)


def test_an_invalid_base_falls_back_to_the_nearest_valid_architecture():
    layers = [Layer("a", ("x", "y", "z")), Layer("b", ("x", "y"))]
    costs = np.array([[np.inf, 1.0], [2.0, 8.0], [3.0, 9.0]])  # per layer the cheapest options are (x, x): invalid
    space = table_space("holes", layers, costs, np.zeros((3, 2)), np.zeros((3, 2)), "cost")
    assert space.base_arch("cheapest") == (0, 1)  # agrees on one layer, and is the cheapest such architecture
    costs[0, 1] = np.inf
    space = table_space("holes", layers, costs, np.zeros((3, 2)), np.zeros((3, 2)), "cost")
    assert space.base_arch("cheapest") == (1, 0)
    assert search(space, "layernas", budget=10, base="cheapest").n_evaluations > 0
