"""kdlib.distill.variance and kdlib.models.linear: the KD-gradient identity, the distillation-gradient update, the
exact noise at the optimum and lambda*, and their errors."""

import pytest
import torch
import torch.nn.functional as F

from kdlib.distill import get_objective
from kdlib.distill.variance import (DistillationGradient, NoiseAtOptimum, Rule, batch_gradients, full_gradients, kd_and_surrogate,
                                    noise_at_optimum, per_example_gradients)
from kdlib.experiments.kd_variance import lbfgs_optimum
from kdlib.models.linear import StackedDeepLinear, StackedLinear
from kdlib.train import TrainConfig, TrainSet, fit


def _data(n=40, d=5, k=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=generator, dtype=torch.float64) > 0).long() + (x[:, 1] > 1).long()
    return x, y.clamp_max(k - 1)


def _linear(d, k, seed, scale=0.5):
    stack = StackedLinear(d, k, 1, seed)
    with torch.no_grad():
        for p in stack.parameters():
            p.mul_(scale * 10)
    return stack.student(0)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_kd_gradient_of_a_linear_student_is_student_minus_lambda_teacher_gradient(lam):
    x, y = _data()
    student, teacher = _linear(5, 3, 0), _linear(5, 3, 1)
    kd, surrogate = kd_and_surrogate(student, teacher, x, y, lam)
    assert (kd - surrogate).abs().max() < 1e-10
    # by hand: a (p_x - (1 - lam) y - lam p_theta)^T / B for the weight of nn.Linear (K, D)
    p_x, p_t, onehot = F.softmax(student(x), 1), F.softmax(teacher(x), 1), F.one_hot(y, 3).double()
    by_hand = ((p_x - (1 - lam) * onehot - lam * p_t).T @ x / len(x)).detach()
    assert torch.allclose(kd[:15].view(3, 5), by_hand, atol=1e-12)


def test_identity_is_specific_to_linear_parametrisation():
    x, y = _data()
    student = StackedDeepLinear(5, 3, 1, seed=0, hidden=(4,)).student(0)
    teacher = StackedDeepLinear(5, 3, 1, seed=1, hidden=(4,)).student(0)
    kd, surrogate = kd_and_surrogate(student, teacher, x, y, 0.7)
    assert (kd - surrogate).abs().max() > 1e-4
    assert -1 < float(F.cosine_similarity(kd, surrogate, dim=0)) < 1 - 1e-6


def test_standard_kd_loss_and_distillation_gradient_train_identically_without_l2():
    """With mu = 0 the registered KD loss and grad CE_B(x) - lam grad CE_B(theta) give the same trajectory (T = 1)."""
    x, y = _data()
    teacher = _linear(5, 3, 7)
    anchors = StackedLinear(5, 3, 2, seed=0)
    for m in range(2):
        anchors.load_student(m, [teacher[0].weight.detach().T, teacher[0].bias.detach()])
    stack = StackedLinear(5, 3, 2, seed=3)
    config = TrainConfig(epochs=3, batch_size=8, lr=0.3, patience=None, optimizer="sgd")
    update = DistillationGradient(anchors, [Rule(), Rule(0.6)], x, y, l2=0.0, steps_per_epoch=config.steps_per_epoch(len(y)))
    objectives = [get_objective("kd", temperature=1.0, alpha=0.6), get_objective("ce")]
    fit(stack, objectives, TrainSet(x, y, teacher=teacher(x).detach()), config=config, seed=0, update=update, progress=False, device="cpu")
    for p in stack.parameters():
        assert (p[0] - p[1]).abs().max() < 1e-12


def test_one_step_follows_the_distillation_gradient_formula():
    """x' = x - lr (grad f_B(x) - lam (grad f_B(theta) - [full] grad F(theta))), f with the L2 term on both sides."""
    x, y = _data(n=12)
    mu, lr = 0.05, 0.2
    rules = [Rule(), Rule(0.5), Rule(0.5, full=True)]
    stack, anchors = StackedLinear(5, 3, 3, seed=0), StackedLinear(5, 3, 3, seed=1)
    start = [p.detach().clone() for p in stack.parameters()]
    config = TrainConfig(epochs=1, batch_size=12, lr=lr, weight_decay=mu, patience=None, optimizer="sgd", max_steps=1)
    update = DistillationGradient(anchors, rules, x, y, l2=mu, steps_per_epoch=1)
    fit(stack, get_objective("ce"), TrainSet(x, y), config=config, seed=0, update=update, progress=False, device="cpu")
    before = StackedLinear(5, 3, 3, seed=0)
    g_student = batch_gradients(before, x, y, mu)  # full batch: the one batch is every example (order is irrelevant)
    g_teacher, g_full = batch_gradients(anchors, x, y, mu), full_gradients(anchors, x, y, mu)
    for m, rule in enumerate(rules):
        for p, p0, gs, gt, gf in zip(stack.parameters(), start, g_student, g_teacher, g_full):
            expected = p0[m] - lr * (gs[m] - rule.lam * (gt[m] - (gf[m] if rule.full else 0)))
            assert torch.allclose(p[m], expected, atol=1e-12)


def test_schedules_decay_lambda_and_take_svrg_snapshots():
    x, y = _data(n=12)
    stack, anchors = StackedLinear(5, 3, 2, seed=0), StackedLinear(5, 3, 2, seed=1)
    update = DistillationGradient(anchors, [Rule(0.8, decay=0.5), Rule(1.0, full=True, svrg=(1, 2))], x, y, l2=0.01, steps_per_epoch=3)
    update.begin_epoch(0, stack)
    assert update.lam.tolist() == [0.8, 0.0]  # SVRG is plain SGD before its first snapshot
    update.begin_epoch(1, stack)
    assert update.lam.tolist() == [0.4, 1.0]
    assert torch.equal(anchors.weights[0][1], stack.weights[0][1]) and not torch.equal(anchors.weights[0][0], stack.weights[0][0])
    assert torch.allclose(update.anchor_full[0][1], full_gradients(stack, x, y, 0.01)[0][1])
    assert Rule(1.0, full=True, svrg=(1, 2)).lam_at(4) == 1.0


def test_sigma2_vanishes_at_lambda_one_for_the_exact_optimum():
    x, y = _data(n=60)
    optimum = lbfgs_optimum(x, y, 0.1, 3)
    module = StackedLinear(5, 3, 1, seed=0)
    module.load_student(0, optimum)
    module = module.student(0)
    noise = noise_at_optimum(module, module, x, y, 0.1, chunk=16)
    assert noise.a > 0.1
    assert abs(noise.sigma2(1.0)) < 1e-12 and noise.lambda_star == pytest.approx(1.0, abs=1e-12)
    assert noise.mean_teacher < 1e-16  # grad F(x*) = 0
    other = _linear(5, 3, 2)
    partial = noise_at_optimum(module, other, x, y, 0.1)
    assert partial.sigma2(partial.lambda_star) > 1e-6  # a teacher away from x* removes only part of the noise
    assert partial.sigma2(partial.lambda_star) <= min(partial.sigma2(lam) for lam in (0.0, 0.5, 1.0))


def test_lambda_star_on_a_hand_sized_case():
    # two examples, one parameter: g* = (1, -1), g_theta = (2, 0): lam* = (2 + 0) / (4 + 0) = 1/2, sigma^2(1/2) = (0 + 1) / 2
    noise = NoiseAtOptimum.from_gradients([(torch.tensor([[1.0]]), torch.tensor([[2.0]])), (torch.tensor([[-1.0]]), torch.tensor([[0.0]]))])
    assert noise.lambda_star == 0.5 and noise.sigma2(0.5) == 0.5 and noise.sigma2(0.0) == 1.0 and noise.sigma2(1.0) == 1.0
    # with the full-gradient correction: g_theta - mean = (1, -1) = g*: lam* = 1 and the noise vanishes
    centered = noise.centered()
    assert centered.lambda_star == 1.0 and centered.sigma2(1.0) == 0.0


def test_per_example_gradients_match_autograd_one_by_one_and_take_soft_targets():
    x, y = _data(n=6)
    model = _linear(5, 3, 4)
    grads = per_example_gradients(model, x, y, 0.1)
    for i in range(len(y)):
        loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]) + 0.05 * sum(p.square().sum() for p in model.parameters())
        expected = torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])
        assert torch.allclose(grads[i], expected, atol=1e-12)
    assert torch.allclose(per_example_gradients(model, x, F.one_hot(y, 3).double(), 0.1), grads, atol=1e-12)


def test_stacked_linear_students_are_independent_standalone_models():
    x, _ = _data(n=4)
    stack = StackedDeepLinear(5, 3, 3, seed=0, hidden=(4,))
    outputs = stack(x)
    assert outputs.shape == (3, 4, 3) and torch.equal(outputs[0], outputs[2])  # shared initial weights
    stack.load_student(1, [p * 2 for p in stack.student_parameters(1)])
    assert torch.allclose(stack.student(1)(x), stack(x)[1], atol=1e-12)
    assert torch.allclose(StackedLinear(5, 3, 2, seed=0, init="zeros")(x), torch.zeros(2, 4, 3, dtype=torch.float64))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"lambda \(the distillation weight\) must be in \[0, 1\], got 1.5"):
        Rule(1.5)
    with pytest.raises(ValueError, match="decay factor"):
        Rule(0.5, decay=0.0)
    with pytest.raises(ValueError, match="needs full=True"):
        Rule(1.0, svrg=(1, 2))
    x, y = _data(n=8)
    with pytest.raises(ValueError, match=r"lambda \(the distillation weight\) must be in \[0, 1\]"):
        kd_and_surrogate(_linear(5, 3, 0), _linear(5, 3, 1), x, y, -0.1)
    with pytest.raises(ValueError, match="one rule per student"):
        DistillationGradient(StackedLinear(5, 3, 2, seed=0), [Rule()], x, y, 0.0, 1)
    with pytest.raises(ValueError, match="undefined"):
        _ = NoiseAtOptimum(1.0, 0.0, 0.0, 0.0, 0.0).lambda_star
    with pytest.raises(ValueError, match="no per-example gradients"):
        NoiseAtOptimum.from_gradients([])
    with pytest.raises(ValueError, match="invalid linear stack"):
        StackedDeepLinear(5, 1, 2, seed=0)
    with pytest.raises(ValueError, match="zeros"):
        StackedDeepLinear(5, 3, 2, seed=0, hidden=(4,), init="zeros")
    with pytest.raises(ValueError, match="need 2 tensors"):
        StackedLinear(5, 3, 2, seed=0).load_student(0, [torch.zeros(3, 5, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"expected inputs \(B, 5\)"):
        StackedLinear(5, 3, 2, seed=0)(torch.zeros(2, 4, dtype=torch.float64))
