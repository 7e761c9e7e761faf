import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from kdlib.distill.active import depround, entropy_gain, k_center_greedy, margin_gain, rad_marginals, worst_case_value


def _lp_optimum(gains: np.ndarray, mistakes: int, budget: int) -> float:
    """max sum p g - (m largest p g) as an LP: variables (p, t, s); sum of m largest = min_t m t + sum (v - t)_+."""
    n = len(gains)
    cost = -np.concatenate([gains, [-mistakes], -np.ones(n)])  # maximise sum g p - m t - sum s
    a_ub = np.hstack([np.diag(gains), -np.ones((n, 1)), -np.eye(n)])  # g p - t - s <= 0
    a_eq = np.concatenate([np.ones(n), [0.0], np.zeros(n)])[None]
    bounds = [(0, 1)] * n + [(None, None)] + [(0, None)] * n
    result = linprog(cost, A_ub=a_ub, b_ub=np.zeros(n), A_eq=a_eq, b_eq=[budget], bounds=bounds, method="highs")
    assert result.success
    return -result.fun


@pytest.mark.parametrize("case", range(60))
def test_rad_marginals_reach_the_lp_optimum(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(3, 25))
    budget = int(rng.integers(1, n + 1))
    mistakes = int(rng.integers(0, n + 1))
    gains = rng.random(n) if case % 3 else rng.choice([0.2, 0.5, 0.9], n)  # ties too
    p = rad_marginals(gains, mistakes, budget)
    assert p.sum() == pytest.approx(budget) and (p >= 0).all() and (p <= 1 + 1e-12).all()
    assert worst_case_value(p, gains, mistakes) == pytest.approx(_lp_optimum(gains, mistakes, budget), rel=1e-6, abs=1e-9)


def test_no_mistakes_gives_margin_order():
    gains = np.array([0.3, 0.9, 0.1, 0.7, 0.5])
    p = rad_marginals(gains, 0, 2)
    assert np.array_equal(np.flatnonzero(p == 1), [1, 3]) and p.sum() == 2


def test_one_mistake_hedges_by_hand():
    # with m = 1, b = 2: equal p g = c on the three best points, c (1/1 + 1/0.8 + 1/0.5) = 2 -> c = 8/17, value 2c;
    # spreading over four points gives 3 * 2 / 6.75 = 0.889 < 16/17, greedy top-2 gives 0.8
    gains = np.array([1.0, 0.8, 0.5, 0.4, 0.2, 0.1])
    p = rad_marginals(gains, 1, 2)
    assert np.allclose(p, [8 / 17, 10 / 17, 16 / 17, 0, 0, 0], atol=1e-9)
    assert worst_case_value(p, gains, 1) == pytest.approx(16 / 17)
    assert worst_case_value(np.array([1.0, 1, 0, 0, 0, 0]), gains, 1) == pytest.approx(0.8)


@pytest.mark.parametrize("budget", [-1, 7])
def test_invalid_budget_raises(budget):
    with pytest.raises(ValueError, match="budget"):
        rad_marginals(np.ones(6), 0, budget)


def test_invalid_mistakes_and_gains_raise():
    with pytest.raises(ValueError, match="mistakes"):
        rad_marginals(np.ones(4), -1, 2)
    with pytest.raises(ValueError, match="non-negative"):
        rad_marginals(np.array([0.5, -0.1]), 0, 1)


def test_depround_returns_exactly_the_budget_and_respects_marginals():
    rng = np.random.default_rng(0)
    p = rad_marginals(np.random.default_rng(1).random(12), 2, 4)
    counts = np.zeros(12)
    draws = 20000
    for _ in range(draws):
        chosen = depround(p, rng)
        assert len(chosen) == 4 and len(set(chosen)) == 4
        counts[chosen] += 1
    assert np.abs(counts / draws - p).max() < 0.015  # Monte Carlo: 3 sigma of a Bernoulli at 20k draws is ~0.011


def test_depround_rejects_bad_marginals():
    with pytest.raises(ValueError, match="integer"):
        depround(np.array([0.5, 0.2]), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        depround(np.array([1.5, -0.5]), np.random.default_rng(0))


def test_gains_by_hand():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    assert torch.allclose(margin_gain(probs), torch.tensor([0.5, 1.0]))
    assert torch.allclose(entropy_gain(torch.tensor([[0.5, 0.5]])), torch.tensor([np.log(2)], dtype=torch.float32))


def test_k_center_greedy_is_the_farthest_first_sequence_by_hand():
    # on a line: covered {0}; candidates 1, 2, 5, 10, 9. Farthest from 0 is 10; then 5 (5 from 0, 5 from 10) beats
    # 2 (2) and 9 (1); then 2 (2 from 0, 3 from 5) beats 1 (1) and 9 (1)
    candidates = torch.tensor([[1.0], [2.0], [5.0], [10.0], [9.0]])
    assert k_center_greedy(candidates, torch.tensor([[0.0]]), 3).tolist() == [3, 2, 1]
    # nothing covered: the first pick is index 0 (1.0), then the farthest from it, 10, then 5 (4 from 1, 5 from 10)
    assert k_center_greedy(candidates, torch.zeros(0, 1), 3).tolist() == [0, 3, 2]
    # duplicates are never picked twice
    twins = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert sorted(k_center_greedy(twins, torch.zeros(1, 2), 3).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="exceeds the pool"):
        k_center_greedy(candidates, torch.zeros(1, 1), 6)
    with pytest.raises(ValueError, match="dimension"):
        k_center_greedy(candidates, torch.zeros(1, 2), 2)
