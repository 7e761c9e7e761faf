import math

import pytest
import torch
import torch.nn.functional as F

from kdlib.train import Batch
from kdlib.distill import available_objectives, get_objective, register_objective


def mean_loss(objective, student, labels, teacher):
    """The batch loss the engine minimises: the mean of the objective's per-example losses."""
    return objective(student, Batch(torch.arange(len(student)), labels, teacher, {}, 0)).mean()

S = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]])
T = torch.tensor([[2.0, 1.0, 0.0], [0.5, 0.5, 2.0]])
Y = torch.tensor([1, 2])


def _kl_by_hand(t_logits, s_logits, temperature):
    total = 0.0
    for t_row, s_row in zip(t_logits.tolist(), s_logits.tolist()):
        pt = [math.exp(v / temperature) for v in t_row]
        ps = [math.exp(v / temperature) for v in s_row]
        pt = [v / sum(pt) for v in pt]
        ps = [v / sum(ps) for v in ps]
        total += sum(a * math.log(a / b) for a, b in zip(pt, ps))
    return total / len(t_logits)


def test_kd_golden_value():
    loss = mean_loss(get_objective("kd", temperature=2.0, alpha=0.7), S, Y, T)
    ce = -0.5 * (math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(0.5))) + math.log(math.e / (1 + math.exp(-1) + math.e)))
    expected = 0.7 * 4.0 * _kl_by_hand(T, S, 2.0) + 0.3 * ce
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.2984800, abs=1e-6)  # frozen from the pure-Python computation above


def test_alpha_zero_is_cross_entropy_and_ce_ignores_teacher():
    assert mean_loss(get_objective("kd", alpha=0.0), S, Y, T).item() == pytest.approx(F.cross_entropy(S, Y).item())
    assert mean_loss(get_objective("ce"), S, Y, T).item() == pytest.approx(F.cross_entropy(S, Y).item())


def test_identical_logits_give_zero_soft_loss():
    assert mean_loss(get_objective("kd", temperature=3.0, alpha=1.0), T, Y, T).item() == pytest.approx(0.0, abs=1e-7)


def test_t_squared_scaling_gradient_identity():
    # d/ds [T^2 KL(p_t || p_s)] = T (softmax(s/T) - softmax(t/T)) / N  (Hinton et al. 2015, Sec. 2.1)
    for temperature in (1.0, 4.0, 10.0):
        s = S.clone().requires_grad_(True)
        mean_loss(get_objective("kd", temperature=temperature, alpha=1.0), s, Y, T).backward()
        expected = temperature * (F.softmax(S / temperature, 1) - F.softmax(T / temperature, 1)) / len(S)
        torch.testing.assert_close(s.grad, expected)


def test_unlabelled_examples_only_get_the_soft_term():
    kd = get_objective("kd", temperature=2.0, alpha=0.5)
    unlabelled = torch.tensor([-1, -1])
    assert mean_loss(kd, S, unlabelled, T).item() == pytest.approx(0.5 * 4.0 * _kl_by_hand(T, S, 2.0), rel=1e-5)
    assert mean_loss(get_objective("ce"), S, unlabelled, T).item() == 0.0


def test_registry_errors():
    assert {"ce", "kd"} <= set(available_objectives())
    with pytest.raises(ValueError, match="unknown objective 'fitnet'"):
        get_objective("fitnet")
    with pytest.raises(ValueError, match="registered twice"):
        register_objective("kd")(object)
    with pytest.raises(ValueError, match="temperature"):
        get_objective("kd", temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        get_objective("kd", alpha=1.5)


def test_shape_errors():
    kd = get_objective("kd")
    with pytest.raises(ValueError, match="differ in shape"):
        mean_loss(kd, S, Y, T[:, :2])
    with pytest.raises(ValueError, match="labels must be"):
        mean_loss(kd, S, Y[:1], T)
