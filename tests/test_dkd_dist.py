import math

import pytest
import torch
import torch.nn.functional as F

from kdlib.train import Batch
from kdlib.distill import get_objective
from kdlib.distill.dkd import decoupled_terms


def mean_loss(objective, student, labels, teacher):
    """The batch loss the engine minimises: the mean of the objective's per-example losses."""
    return objective(student, Batch(torch.arange(len(student)), labels, teacher, {}, 0)).mean()

S = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 1.2], [1.0, 1.0, 0.0]])
T = torch.tensor([[3.0, -0.5, 0.2], [-1.0, 2.0, 0.5], [0.2, 1.5, -0.3]])
Y = torch.tensor([0, 2, 1])


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_kd_equals_its_decoupled_decomposition():
    # DKD's Eq. 5: KL(p_t || p_s) = TCKD + (1 - p_t[y]) NCKD, per example, at any temperature
    for temperature in (1.0, 2.5):
        tckd, nckd = decoupled_terms(S, T, Y, temperature)
        p_t = F.softmax(T / temperature, 1)
        kl = (p_t * (F.log_softmax(T / temperature, 1) - F.log_softmax(S / temperature, 1))).sum(1)
        assert torch.allclose(kl, tckd + (1 - p_t[torch.arange(3), Y]) * nckd, atol=1e-6)


def test_dkd_terms_by_hand_on_one_example():
    s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    tckd, nckd = decoupled_terms(s, t, torch.tensor([0]))
    ps, pt = F.softmax(s, 1)[0].tolist(), F.softmax(t, 1)[0].tolist()
    assert tckd.item() == pytest.approx(_kl([pt[0], 1 - pt[0]], [ps[0], 1 - ps[0]]), rel=1e-5)
    renorm = lambda p: [p[1] / (p[1] + p[2]), p[2] / (p[1] + p[2])]  # noqa: E731
    assert nckd.item() == pytest.approx(_kl(renorm(pt), renorm(ps)), rel=1e-5)


def test_dkd_objective_weights_and_gradient_is_finite():
    tckd, nckd = decoupled_terms(S, T, Y)
    loss = mean_loss(get_objective("dkd", alpha=1.0, beta=2.0, temperature=1.0, ce_weight=1.0), S, Y, T)
    assert loss.item() == pytest.approx((tckd + 2 * nckd).mean().item() + F.cross_entropy(S, Y).item(), rel=1e-6)
    s = S.clone().requires_grad_()
    mean_loss(get_objective("dkd"), s, Y, T).backward()
    assert torch.isfinite(s.grad).all()
    with pytest.raises(ValueError, match="temperature"):
        get_objective("dkd", temperature=0.0)


def test_kd_sum_at_t1_matches_the_closed_form():
    loss = mean_loss(get_objective("kd_sum"), S, Y, T)
    p_t = F.softmax(T, 1)
    kl = (p_t * (torch.log(p_t) - F.log_softmax(S, 1))).sum(1).mean()
    assert loss.item() == pytest.approx(kl.item() + F.cross_entropy(S, Y).item(), rel=1e-6)
    unlabelled = torch.full((3,), -1)
    assert mean_loss(get_objective("kd_sum"), S, unlabelled, T).item() == pytest.approx(kl.item(), rel=1e-6)


def test_dist_of_identical_logits_is_zero_and_positive_otherwise():
    assert mean_loss(get_objective("dist", ce_weight=0.0), T, Y, T).item() == pytest.approx(0.0, abs=1e-6)
    assert mean_loss(get_objective("dist", ce_weight=0.0), S, Y, T).item() > 0.05
    # a shift of the logits changes nothing; DIST only sees relations
    assert mean_loss(get_objective("dist", ce_weight=0.0), T + 3.0, Y, T).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        get_objective("dist", beta=-1.0)


def test_soft_labels_are_accepted_by_every_objective():
    soft = F.one_hot(Y, 3).float()
    for name in ("ce", "kd_sum", "dkd", "dist"):
        objective = get_objective(name)
        assert mean_loss(objective, S, soft, T).item() == pytest.approx(mean_loss(objective, S, Y, T).item(), rel=1e-6), name
    mixed = 0.7 * soft + 0.3 * F.one_hot(Y.roll(1), 3).float()
    expected = 0.7 * F.cross_entropy(S, Y) + 0.3 * F.cross_entropy(S, Y.roll(1))
    assert mean_loss(get_objective("ce"), S, mixed, T).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="soft"):
        mean_loss(get_objective("ce"), S, torch.zeros(3, 4), T)
