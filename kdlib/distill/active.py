"""Robust active distillation (RAD; Baykal et al., ICLR 2023): which unlabelled points to ask the teacher about.

Each round a budget b of pool points is sent to the teacher for soft labels. RAD picks marginals p in [0, 1]^n with
sum(p) = b by a game [R]: the learner gains g_i (the student's uncertainty) from each queried point, an adversary
picks the m points the teacher mislabels (they gain nothing), and the learner maximises its worst case

    max_p  sum_i p_i g_i - (sum of the m largest p_i g_i)    s.t.  0 <= p_i <= 1,  sum_i p_i = b,

then draws exactly b points with those marginals by dependent rounding (DepRound, Gandhi et al. 2006). m is the
expected number of teacher mistakes among b points, from the teacher's accuracy on a validation set.

The game's value is max_t [h(t) - m t] with h(t) = max_p sum_i min(p_i g_i, t), a concave function of t; for a
fixed t, h is a fractional knapsack (points by decreasing gain, each up to p_i = min(1, t / g_i)). So the optimum
is found by a 1-D concave maximisation, exactly (checked against an LP solver in the tests).

Every way of choosing a round's queries (RAD, its variants, the active-learning baselines and the oracle) is a
*selection rule* ``rule(state, rng) -> indices`` registered by name (``get_selection_rule("RAD")``). Among the
baselines, the coreset rule (Sener & Savarese, ICLR 2018) is k-center greedy on the student's penultimate features:
each pick is the candidate farthest from everything labelled or picked so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from kdlib.distill.correctness import top1_margin
from kdlib.registry import Registry

GOLDEN = (math.sqrt(5) - 1) / 2


def margin_gain(student_probs: torch.Tensor) -> torch.Tensor:
    """1 - (top-1 - top-2 probability) of the student: 1 where it cannot tell its two best classes apart."""
    top2 = student_probs.topk(2, dim=1).values
    return 1.0 - (top2[:, 0] - top2[:, 1])


def entropy_gain(student_probs: torch.Tensor) -> torch.Tensor:
    """The entropy of the student's prediction (nats)."""
    return -(student_probs * torch.log(student_probs.clamp_min(1e-12))).sum(1)


def _check_selection(n: int, budget: int) -> None:
    if budget < 0:
        raise ValueError(f"the budget must be non-negative, got {budget}")
    if budget > n:
        raise ValueError(f"the budget ({budget}) exceeds the pool ({n} points)")


def worst_case_value(marginals: np.ndarray, gains: np.ndarray, mistakes: int) -> float:
    """sum_i p_i g_i minus its m largest terms: the learner's payoff when the adversary corrupts the best m points."""
    values = np.sort(np.asarray(marginals, dtype=float) * np.asarray(gains, dtype=float))
    return float(values[: max(len(values) - mistakes, 0)].sum())


def _fill(gains_desc: np.ndarray, level: float, budget: float) -> np.ndarray:
    """The knapsack of level t: points by decreasing gain, each up to min(1, t / g), until the budget is spent."""
    with np.errstate(divide="ignore"):
        caps = np.where(gains_desc > 0, np.minimum(1.0, level / gains_desc), 1.0)
    before = np.concatenate([[0.0], np.cumsum(caps)[:-1]])
    return np.clip(budget - before, 0.0, caps)


def rad_marginals(gains: np.ndarray | torch.Tensor, mistakes: int, budget: int, iterations: int = 200) -> np.ndarray:
    """RAD's selection probabilities: the marginals p (sum = ``budget``) that maximise the worst-case gain when the
    teacher mislabels ``mistakes`` of the queried points. ``mistakes = 0`` gives the top-``budget`` gains."""
    gains = np.asarray(gains, dtype=float)
    n = len(gains)
    _check_selection(n, budget)
    if mistakes < 0 or mistakes > n:
        raise ValueError(f"the number of teacher mistakes must lie in [0, {n}], got {mistakes}")
    if (gains < 0).any() or not np.isfinite(gains).all():
        raise ValueError("gains must be finite and non-negative")
    order = np.argsort(-gains, kind="stable")
    desc = gains[order]
    top = float(desc[0]) if n else 0.0

    def objective(level: float) -> float:
        p = _fill(desc, level, budget)
        return float(np.minimum(p * desc, level).sum() - mistakes * level)

    low, high = 0.0, top
    if mistakes > 0 and top > 0:  # golden-section search of the concave objective on [0, max gain]
        a, b = high - GOLDEN * (high - low), low + GOLDEN * (high - low)
        fa, fb = objective(a), objective(b)
        for _ in range(iterations):
            if fa < fb:
                low, a, fa = a, b, fb
                b = low + GOLDEN * (high - low)
                fb = objective(b)
            else:
                high, b, fb = b, a, fa
                a = high - GOLDEN * (high - low)
                fa = objective(a)
        level = (low + high) / 2
    else:
        level = top  # without mistakes the objective only grows with t: greedy top-b
    p = _fill(desc, level, budget)
    leftover = budget - p.sum()
    if leftover > 1e-9:  # the budget the level could not use adds no value: put it on the next-best points
        room = 1.0 - p
        p += np.clip(leftover - np.concatenate([[0.0], np.cumsum(room)[:-1]]), 0.0, room)
    marginals = np.empty(n)
    marginals[order] = np.clip(p, 0.0, 1.0)
    return marginals


def depround(marginals: np.ndarray, rng: np.random.Generator, tolerance: float = 1e-9) -> np.ndarray:
    """Dependent rounding: exactly sum(p) distinct indices, index i chosen with probability p_i."""
    p = np.asarray(marginals, dtype=float).copy()
    if ((p < -tolerance) | (p > 1 + tolerance)).any():
        raise ValueError("marginals must lie in [0, 1]")
    total = p.sum()
    if abs(total - round(total)) > 1e-6:
        raise ValueError(f"marginals must sum to an integer, got {total:.6f}")
    p = np.clip(p, 0.0, 1.0)
    fractional = list(np.flatnonzero((p > tolerance) & (p < 1 - tolerance)))
    while len(fractional) >= 2:  # each step makes at least one of two fractional entries 0 or 1, keeping E[p] fixed
        i, j = fractional.pop(), fractional.pop()
        up, down = min(1 - p[i], p[j]), min(p[i], 1 - p[j])
        if rng.random() < down / (up + down):
            p[i], p[j] = p[i] + up, p[j] - up
        else:
            p[i], p[j] = p[i] - down, p[j] + down
        for k in (i, j):
            if p[k] <= tolerance or p[k] >= 1 - tolerance:
                p[k] = float(p[k] >= 1 - tolerance)
            else:
                fractional.append(k)
    if fractional:  # a lone remainder only from rounding error in the sum
        p[fractional[0]] = float(p[fractional[0]] >= 0.5)
    return np.flatnonzero(p >= 1 - tolerance)


# --- selection rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoundState:
    """What a strategy sees when it picks a round's queries among the ``n`` points not queried yet."""

    student_probs: torch.Tensor  # (n, C): the strategy's current student on the candidates
    budget: int
    teacher_error: float  # estimated on V: 1 - the teacher's validation accuracy
    teacher_right: torch.Tensor  # (n,) bool; oracles only
    right_given_student_margin: Callable[[torch.Tensor], torch.Tensor]  # P(teacher right | student margin), fitted on V
    right_given_teacher_margin: torch.Tensor  # (n,) P(teacher right | its own margin), fitted on V; privileged
    embeddings: torch.Tensor  # (n, E): the current student's penultimate features of the candidates
    covered: torch.Tensor  # (k, E): its features of the points it already has labels for (L and the queries so far)

    @property
    def mistakes(self) -> int:
        """m: the expected number of teacher mistakes among ``budget`` queried points."""
        return int(round(self.budget * self.teacher_error))


SelectionRule = Callable[[RoundState, np.random.Generator], np.ndarray]
_SELECTION_RULES: Registry[SelectionRule] = Registry("selection rule")
register_selection_rule = _SELECTION_RULES.register  # decorator: make a rule usable by name
available_selection_rules = _SELECTION_RULES.names
get_selection_rule = _SELECTION_RULES.get


def _top(scores: torch.Tensor, budget: int) -> np.ndarray:
    return scores.argsort(descending=True, stable=True)[:budget].numpy()


def _rad(gains: torch.Tensor, mistakes: int, state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return depround(rad_marginals(gains.numpy(), mistakes, state.budget), rng)


def k_center_greedy(candidates: torch.Tensor, covered: torch.Tensor, budget: int) -> np.ndarray:
    """Farthest-first traversal: ``budget`` candidate indices, each the one farthest (Euclidean) from its nearest
    point among ``covered`` and the earlier picks (ties: the lowest index; with nothing covered, the first pick is 0)."""
    _check_selection(len(candidates), budget)
    if len(covered) and covered.shape[1:] != candidates.shape[1:]:
        raise ValueError(f"covered points {tuple(covered.shape)} and candidates {tuple(candidates.shape)} differ in dimension")
    candidates = candidates.double()
    nearest = torch.cdist(candidates, covered.double()).amin(1) if len(covered) else torch.full((len(candidates),), math.inf, dtype=torch.double)
    picks = []
    for _ in range(budget):
        pick = int(nearest.argmax())
        picks.append(pick)
        nearest = torch.minimum(nearest, (candidates - candidates[pick]).norm(dim=1))
        nearest[pick] = -math.inf  # never again, even among duplicates
    return np.array(picks, dtype=int)


@register_selection_rule("uniform")
def uniform(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(state.student_probs), state.budget, replace=False)


@register_selection_rule("margin")
def margin(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return _top(margin_gain(state.student_probs), state.budget)


@register_selection_rule("entropy")
def entropy(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    return _top(entropy_gain(state.student_probs), state.budget)


@register_selection_rule("coreset (k-center greedy)")
def coreset(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The coreset baseline: k-center greedy on the current student's penultimate features (diversity, no uncertainty)."""
    return k_center_greedy(state.embeddings, state.covered, state.budget)


@register_selection_rule("RAD")
def rad(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The gain-only game: margin gains, m from the teacher's validation accuracy."""
    return _rad(margin_gain(state.student_probs), state.mistakes, state, rng)


@register_selection_rule("RAD, true m")
def rad_true_m(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The game with m = the true number of teacher mistakes among margin sampling's picks (oracle)."""
    gains = margin_gain(state.student_probs)
    mistakes = int((~state.teacher_right[_top(gains, state.budget)]).sum())
    return _rad(gains, mistakes, state, rng)


@register_selection_rule("RAD + student-side correctness")
def rad_student_correctness(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """The game on expected gains: a point is worth its margin gain times P(teacher right | the student's margin),
    an isotonic fit on V that needs no teacher query on the pool; m as in RAD."""
    right = state.right_given_student_margin(top1_margin(state.student_probs))
    return _rad(margin_gain(state.student_probs) * right, state.mistakes, state, rng)


@register_selection_rule("RAD + teacher confidence (privileged)")
def rad_teacher_correctness(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """As :func:`rad_student_correctness` with P(teacher right | the teacher's own margin), notebook 02's calibrated
    alpha: it reads the teacher's output on every pool point (privileged: that costs queries in practice)."""
    return _rad(margin_gain(state.student_probs) * state.right_given_teacher_margin, state.mistakes, state, rng)


@register_selection_rule("oracle (skip teacher mistakes)")
def oracle_margin(state: RoundState, rng: np.random.Generator) -> np.ndarray:
    """Margin sampling that skips the points the teacher gets wrong (reads the truth: an upper bound)."""
    gains = margin_gain(state.student_probs).masked_fill(~state.teacher_right, -1.0)
    return _top(gains, state.budget)
