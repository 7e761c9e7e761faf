"""The search API, LayerNAS's exactness and evaluation count, and the baselines, on small synthetic spaces."""

import itertools

import numpy as np
import pytest

from kdlib.nas import additive_space, available_strategies, coarse_bound, evaluation_bound, exhaustive, search
from kdlib.nas.layernas import BUCKETINGS, bucket_edges, bucket_of
from kdlib.nas.space import BASE_POLICIES, Layer, table_space

SETTINGS = [(base, bucketing) for base in BASE_POLICIES for bucketing in BUCKETINGS]
PRIMARY = {"base": "largest", "bucketing": "equal-width"}


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
    result = search(space, "layernas", budget=10_000, cost_limit=limit, seed=seed, H=n_buckets, k=1, **PRIMARY)
    oracle = exhaustive(space, limit)
    assert result.cost <= limit
    assert result.reward == pytest.approx(oracle["reward"])


def test_layernas_evaluation_count_matches_the_formula():
    for n_layers in (3, 5, 7):
        space = bits_space(n_layers)
        # base = "largest" puts every unsearched layer "on"; H = L + 1 gives every prefix cost 0..l its own bucket,
        # so |M_l| = l + 1 and N = |S_1| + sum_{l>=2} |M_{l-1}| (|S_l| - 1) = 2 + sum_{l=2}^{L} l = L(L+1)/2 + 1
        result = search(space, "layernas", budget=10_000, seed=0, H=n_layers + 1, k=1, **PRIMARY)
        assert result.info["kept_per_layer"] == [l + 1 for l in range(1, n_layers + 1)]
        assert result.n_evaluations == n_layers * (n_layers + 1) // 2 + 1
        assert result.n_evaluations <= evaluation_bound(space, H=n_layers + 1, k=1)


@pytest.mark.parametrize("base, bucketing", SETTINGS)
def test_layernas_evaluations_grow_with_depth_not_with_the_space(base, bucketing):
    counts = []
    for n_layers in range(2, 9):
        space = additive_space(n_layers, 4, seed=n_layers)
        result = search(space, "layernas", budget=10**6, cost_limit=space.cost_quantile(0.5), seed=0, H=8, k=2, base=base, bucketing=bucketing)
        kept = [1] + result.info["kept_per_layer"][:-1]
        sizes = [len(layer.options) for layer in space.layers]
        # every candidate is new except "layer l at its base option", which is the kept model itself
        assert result.n_evaluations <= sizes[0] + sum(m * (s - 1) for m, s in zip(kept[1:], sizes[1:]))
        assert result.n_evaluations <= evaluation_bound(space, 8, 2) <= coarse_bound(space, 8, 2) == 2 * 8 * 4 * n_layers
        assert max(result.info["kept_per_layer"]) <= 2 * 8 and result.cost <= result.cost_limit
        counts.append(result.n_evaluations)
    assert counts[-1] < 4**8 / 100  # 65,536 architectures, a few hundred evaluations at most


def test_equal_width_edges_by_hand():
    np.testing.assert_allclose(bucket_edges("equal-width", [], 2.0, 10.0, 4), [4.0, 6.0, 8.0])
    edges = bucket_edges("equal-width", [], 2.0, 10.0, 4)
    assert [bucket_of(c, edges) for c in (2.0, 3.9, 4.0, 7.5, 8.0, 10.0, 50.0, -1.0)] == [0, 0, 1, 2, 3, 3, 3, 0]
    rng = np.random.default_rng(0)
    for cost in rng.uniform(0, 12, 200):  # the closed form of the notes, away from the edges
        assert bucket_of(cost, edges) == min(max(int(np.floor(4 * (cost - 2) / 8)), 0), 3)


def test_equal_count_edges_by_hand():
    costs = [5, 1, 3, 3, 9, 7, 2, 8]  # sorted 1 2 3 3 5 7 8 9; edges at ranks floor(j 8 / 4) = 2, 4, 6
    edges = bucket_edges("equal-count", costs, 0.0, 100.0, 4)
    np.testing.assert_array_equal(edges, [3, 5, 8])
    assert sorted(bucket_of(c, edges) for c in costs) == [0, 0, 1, 1, 2, 2, 3, 3]  # two candidates per bucket
    assert bucket_of(2.9, edges) == 0 and bucket_of(3, edges) == 1  # a cost on an edge goes to the upper bucket
    ties = bucket_edges("equal-count", [1, 1, 1, 1, 2, 2, 2, 2], 0.0, 1.0, 4)  # equal costs share a bucket
    np.testing.assert_array_equal(ties, [1, 2, 2])
    assert {bucket_of(1, ties), bucket_of(2, ties)} == {1, 3}
    few = bucket_edges("equal-count", [4, 1], 0.0, 1.0, 4)  # fewer candidates than buckets: each its own
    np.testing.assert_array_equal(few, [1, 4, 4])
    assert bucket_of(1, few) != bucket_of(4, few)


def test_bucket_errors():
    with pytest.raises(ValueError, match="bucketing must be one of"):
        bucket_edges("log-width", [1.0], 0.0, 1.0, 4)
    with pytest.raises(ValueError, match="need the candidates' costs"):
        bucket_edges("equal-count", [], 0.0, 1.0, 4)


def clustered_space():
    """Layer 1 costs 0, 1, 2, 3 or 100, layer 2 costs 0 or 1: the first layer's candidates crowd the cheap end."""
    layer_costs = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    costs = layer_costs[:, None] + np.array([0.0, 1.0])[None, :]
    rewards = np.arange(10, dtype=float).reshape(5, 2)
    return table_space("clustered", [Layer("a", tuple("vwxyz")), Layer("b", ("p", "q"))], costs, rewards, rewards, "cost")


def test_equal_count_keeps_more_where_costs_crowd():
    space = clustered_space()
    # H = 4, k = 1 over [0, 101]: equal-width buckets are 25.25 wide, so costs 0-3 share bucket 0 and 100 is alone:
    # 2 models kept after layer 1; equal-count edges at the candidates' ranks 1, 2, 3 -> [1, 2, 3]: 4 buckets kept
    width = search(space, "layernas", budget=100, seed=0, H=4, k=1, base="cheapest", bucketing="equal-width")
    count = search(space, "layernas", budget=100, seed=0, H=4, k=1, base="cheapest", bucketing="equal-count")
    assert width.info["kept_per_layer"][0] == 2 and count.info["kept_per_layer"][0] == 4
    assert count.info["bucketing"] == "equal-count" and width.info["base"] == "cheapest"


def test_base_policies_decide_which_evaluations_are_feasible():
    space = bits_space(4)  # cost = number of layers "on"
    largest = search(space, "layernas", budget=100, cost_limit=1, seed=0, base="largest", bucketing="equal-width")
    cheapest = search(space, "layernas", budget=100, cost_limit=1, seed=0, base="cheapest", bucketing="equal-width")
    assert largest.info["base_arch"] == "l0=on l1=on l2=on l3=on" and cheapest.info["base_arch"] == "l0=off l1=off l2=off l3=off"
    # largest: the first layer's candidates (off, on, on, on) and (on, on, on, on) cost 3 and 4 > 1
    assert largest.history_costs[:2].tolist() == [3, 4] and not largest.feasible.all()
    # cheapest (costs additive): every candidate is its own cheapest completion, so every evaluation is feasible
    assert cheapest.feasible.all() and cheapest.history_archs[:2] == ((0, 0, 0, 0), (1, 0, 0, 0))
    for result in (largest, cheapest):
        assert result.cost <= 1 and result.reward == pytest.approx(exhaustive(space, 1)["reward"])


def test_layernas_states_its_open_choices():
    space = additive_space(3, 3, seed=0)
    with pytest.raises(TypeError, match="base"):
        search(space, "layernas", budget=10)  # no default: the caller chooses
    with pytest.raises(ValueError, match="bucketing one of"):
        search(space, "layernas", budget=10, base="largest", bucketing="log-width")


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
    result = search(space, "layernas", budget=4, seed=0, **PRIMARY)
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
        search(space, "layernas", budget=10, cost_limit=space.min_cost - 1, **PRIMARY)
    with pytest.raises(ValueError, match="3 layers, got 2"):
        space.cost((0, 1))
    with pytest.raises(ValueError, match="options 0..2, got 3"):
        space.cost((0, 1, 3))
    with pytest.raises(ValueError, match="H and k must be positive integers"):
        search(space, "layernas", budget=10, H=0, **PRIMARY)
    with pytest.raises(ValueError, match="base must be one of"):
        search(space, "layernas", budget=10, base="median", bucketing="equal-width")


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
    for strategy, params in (("layernas", PRIMARY), ("random", {}), ("evolution", {})):
        result = search(space, strategy, budget=10, seed=0, **params)
        assert (1, 0) not in result.history_archs and result.arch == (1, 1)


def test_an_invalid_base_falls_back_to_the_nearest_valid_architecture():
    layers = [Layer("a", ("x", "y", "z")), Layer("b", ("x", "y"))]
    costs = np.array([[np.inf, 1.0], [2.0, 8.0], [3.0, 9.0]])  # per layer the cheapest options are (x, x): invalid
    space = table_space("holes", layers, costs, np.zeros((3, 2)), np.zeros((3, 2)), "cost")
    assert space.base_arch("cheapest") == (0, 1)  # agrees on one layer, and is the cheapest such architecture
    costs[0, 1] = np.inf
    space = table_space("holes", layers, costs, np.zeros((3, 2)), np.zeros((3, 2)), "cost")
    assert space.base_arch("cheapest") == (1, 0)
    assert search(space, "layernas", budget=10, base="cheapest", bucketing="equal-count").n_evaluations > 0


def test_the_base_fallback_is_the_nearest_valid_architecture_by_brute_force():
    rng = np.random.default_rng(3)
    layers = [Layer(f"l{i}", ("a", "b", "c")) for i in range(4)]
    for _ in range(20):
        costs = rng.integers(1, 20, size=(3,) * 4).astype(float)
        costs[rng.random(costs.shape) < 0.4] = np.inf
        costs[(0,) * 4] = np.inf  # an invalid per-layer combination is likely
        space = table_space("holes", layers, costs, np.zeros(costs.shape), np.zeros(costs.shape), "cost")
        for policy in BASE_POLICIES:
            finite = np.where(np.isfinite(costs), costs, 0.0)
            target = []
            for axis in range(4):
                others = tuple(a for a in range(4) if a != axis)
                mean = finite.sum(axis=others) / np.maximum(np.isfinite(costs).sum(axis=others), 1)
                target.append(int(np.argmax(mean) if policy == "largest" else np.argmin(mean)))
            archs = space.all_archs()
            key = [(-sum(a == b for a, b in zip(arch, target)), -costs[arch] if policy == "largest" else costs[arch], i) for i, arch in enumerate(archs)]
            expected = archs[min(key)[2]] if not np.isfinite(costs[tuple(target)]) else tuple(target)
            assert space.base_arch(policy) == expected
