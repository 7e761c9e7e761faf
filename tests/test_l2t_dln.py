"""kdlib.models.loss_network, kdlib.distill.l2t_dln and the protocol of kdlib.experiments.l2t_dln: the 1-vs-1 view by
hand, the DLN loss's differentiability, the hypergradient through the unrolled student step, the teacher's gradients,
the memory reset, the student's and BatchNorm's trajectory under the teaching update, and the errors."""

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from kdlib.distill import get_objective
from kdlib.distill.l2t_dln import CoordinateLSTM, TeachingUpdate, preprocess, sgd_unroll
from kdlib.experiments import l2t_dln as protocol
from kdlib.models.loss_network import LossNetwork, one_vs_one, pairwise_bce, pairwise_bce_init
from kdlib.models.mlp import MLP
from kdlib.models.vision import CNNConfig, SmallCNN
from kdlib.train import Batch, TrainConfig, TrainSet, fit


def test_one_vs_one_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0), -math.log(3.0)], [2.0, 0.0, 1.0]])
    s = torch.sigmoid(logits)  # row 0: 0.5, 0.75, 0.25
    rows = one_vs_one(logits, torch.tensor([1, 0]))
    expected = torch.tensor([
        [0.75, 0.5, 1, 0], [0, 0, 0, 0], [0.75, 0.25, 1, 0],  # example 0, target class 1
        [0, 0, 0, 0], [s[1, 0], s[1, 1], 1, 0], [s[1, 0], s[1, 2], 1, 0],  # example 1, target class 0
    ])
    assert rows.shape == (6, 4)
    assert torch.allclose(rows, expected)


@pytest.mark.parametrize("logits, labels, message", [
    (torch.zeros(3), torch.zeros(3, dtype=torch.long), "logits must be"),
    (torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), "C >= 2"),
    (torch.zeros(3, 4), torch.zeros(3, 4), "class ids"),
    (torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), "class ids"),
    (torch.zeros(2, 4), torch.tensor([0, 4]), r"lie in \[0, 4\)"),
    (torch.zeros(2, 4), torch.tensor([-1, 0]), r"lie in \[0, 4\)"),
])
def test_one_vs_one_errors(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        one_vs_one(logits, labels)


def test_loss_is_the_mean_over_all_rows_and_target_rows_give_zero():
    network = LossNetwork(seed=3)
    logits, labels = torch.randn(5, 7, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 6, 3, 3, 1])
    assert float(network.row_losses(torch.zeros(2, 4)).detach().abs().max()) == 0.0  # bias-free: the target rows contribute 0
    rows = network.row_losses(one_vs_one(logits, labels))
    assert network(logits, labels).shape == (5,)
    assert float(network(logits, labels).detach().mean()) == pytest.approx(float(rows.detach().mean()), rel=1e-6)  # the authors' mean over B*C rows


def test_loss_network_init_is_seeded_kaiming_fan_out():
    a, b, c = LossNetwork(0), LossNetwork(0), LossNetwork(1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)
    assert all(layer.bias is None for layer in a.layers)
    widths = [layer.weight.shape for layer in a.layers]
    assert widths == [(40, 4), (40, 40), (40, 40), (40, 40), (1, 40)]
    big = LossNetwork(0, widths=(4000,))
    assert float(big.layers[0].weight.detach().std()) == pytest.approx((2 / (1 + 0.01**2)) ** 0.5 / 4000**0.5, rel=0.05)  # fan-out = 4000
    with pytest.raises(ValueError, match="invalid loss network"):
        LossNetwork(0, widths=())


def test_dln_loss_is_differentiable_in_the_logits():
    network = LossNetwork(seed=1).double()
    labels = torch.tensor([2, 0, 1])
    logits = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: network(z, labels).mean(), (logits,), eps=1e-6, atol=1e-6)


def test_pairwise_bce_gradient_at_equal_logits_is_cross_entropys():
    for classes in (2, 5, 10):
        labels = torch.arange(3) % classes
        z = torch.zeros(3, classes, requires_grad=True)
        ours = torch.autograd.grad(pairwise_bce(z, labels).sum(), z)[0]
        z2 = torch.zeros(3, classes, requires_grad=True)
        ce = torch.autograd.grad(F.cross_entropy(z2, labels, reduction="sum"), z2)[0]
        assert torch.allclose(ours, ce, atol=1e-6)


def test_pairwise_bce_init_fits_the_target():
    network = LossNetwork(seed=0)
    logits, labels = torch.randn(64, 10, generator=torch.Generator().manual_seed(2)) * 2, torch.arange(64) % 10
    gap = lambda: float((network(logits, labels) - pairwise_bce(logits, labels)).detach().abs().mean())  # noqa: E731
    before = gap()
    rmse = pairwise_bce_init(network, steps=300, samples=256, seed=0)
    after = gap()
    assert rmse < 1.0 and after < before / 4
    with pytest.raises(ValueError, match="positive steps"):
        pairwise_bce_init(network, steps=0)


def test_loss_network_objective_skips_unlabelled_and_rejects_soft_labels():
    network = LossNetwork(seed=0)
    objective = get_objective("loss_network", network=network)
    logits, labels = torch.randn(3, 4), torch.tensor([1, -1, 3])
    losses = objective(logits, Batch(torch.arange(3), labels, None, {}, 0))
    assert losses[1] == 0 and torch.allclose(losses[[0, 2]], network(logits[[0, 2]], labels[[0, 2]]))
    with pytest.raises(ValueError, match="class ids"):
        objective(logits, Batch(torch.arange(3), torch.full((3, 4), 0.25), None, {}, 0))


def test_preprocess_by_hand():
    g = torch.tensor([1.0, -math.exp(-5), 1e-6, 0.0])
    expected = torch.tensor([[0.0, 1.0], [-0.5, -1.0], [-1.0, math.exp(10) * 1e-6], [-1.0, 0.0]])
    assert torch.allclose(preprocess(g, p=10.0), expected, atol=1e-6)


def test_coordinate_lstm_shapes_and_range():
    lstm = CoordinateLSTM((6, 5))
    state = lstm.initial_state(7)
    assert [tuple(h.shape) for h, _ in state] == [(7, 6), (7, 5), (7, 1)]
    update, new = lstm(torch.randn(7) * 1e-3, state)
    assert update.shape == (7,) and bool((update.abs() < 1).all())
    assert [tuple(c.shape) for _, c in new] == [(7, 6), (7, 5), (7, 1)]
    with pytest.raises(ValueError, match="invalid teacher"):
        CoordinateLSTM(())


def _mlp_problem(dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(6, 3, hidden=(5,)).to(dtype)
    batches = [(torch.randn(8, 6, generator=generator, dtype=dtype), torch.randint(0, 3, (8,), generator=generator), 0.5) for _ in range(3)]
    val = (torch.randn(10, 6, generator=generator, dtype=dtype), torch.randint(0, 3, (10,), generator=generator))
    return model, batches, val


def test_sgd_unroll_matches_hand_written_sgd():
    model, batches, _ = _mlp_problem()
    loss = lambda logits, labels: F.cross_entropy(logits, labels, reduction="none")  # noqa: E731
    params = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}
    ours = sgd_unroll(model, params, {}, batches, loss, create_graph=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for x, y, _ in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert all(torch.allclose(ours[k], p, atol=1e-6) for k, p in model.named_parameters())


def test_hypergradient_through_the_unroll_matches_finite_differences():
    """d CE(f_{w_K(phi)}(x_v)) / d phi, the teacher's input, along a random direction, against central differences."""
    model, batches, (x_v, y_v) = _mlp_problem(torch.float64)
    network = LossNetwork(seed=2, widths=(6, 6)).double()
    phi = {k: p.detach().clone().requires_grad_() for k, p in network.named_parameters()}
    w0 = {k: p.detach().clone().requires_grad_() for k, p in model.named_parameters()}

    def val_loss(phi_values: dict) -> torch.Tensor:
        loss = lambda logits, labels: functional_call(network, phi_values, (logits, labels))  # noqa: E731
        w = sgd_unroll(model, dict(w0), {}, batches, loss, create_graph=True)
        return F.cross_entropy(functional_call(model, w, (x_v,)), y_v)

    grads = torch.autograd.grad(val_loss(phi), list(phi.values()))
    generator = torch.Generator().manual_seed(7)
    direction = {k: torch.randn(p.shape, generator=generator, dtype=torch.float64) for k, p in phi.items()}
    analytic = sum(float((g * direction[k]).sum()) for g, k in zip(grads, phi))
    eps = 1e-5
    shifted = lambda sign: {k: p.detach() + sign * eps * direction[k] for k, p in phi.items()}  # noqa: E731
    numeric = (val_loss(shifted(1)).item() - val_loss(shifted(-1)).item()) / (2 * eps)
    assert analytic != 0 and analytic == pytest.approx(numeric, rel=1e-5)


def _cnn_task(seed=0, n=48):
    generator = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 8, 8, generator=generator), torch.randint(0, 3, (n,), generator=generator)
    torch.manual_seed(seed)
    return SmallCNN(CNNConfig(1, 3, widths=(2, 3), embed_dim=4)), x, y


def _teach(teacher: str, steps: int, unroll: int = 2, step_scale: float = 1e-2, optimizer: str = "sgd", on_step=None):
    model, x, y = _cnn_task()
    network = LossNetwork(seed=0, widths=(5, 5))
    update = TeachingUpdate(model, network, (x[:16], y[:16]), teacher=teacher, step_scale=step_scale, unroll=unroll, val_batch=8, seed=0, hidden=(4,))
    config = TrainConfig(epochs=100, batch_size=8, lr=0.1, optimizer=optimizer, patience=None, max_steps=steps)
    fit(model, get_objective("loss_network", network=network), TrainSet(x, y), config=config, seed=0, update=update, on_step=on_step, progress=False,
        device="cpu")
    return model, network, update


def test_teacher_parameters_receive_non_zero_gradients_through_the_unrolled_step():
    _, _, update = _teach("lstm", steps=4)  # two teaching steps: the second starts from non-zero memory
    grads = {name: p.grad for name, p in update.lstm.named_parameters()}
    assert all(g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in grads.values()), grads.keys()
    assert len(update.log) == 2 and all(row["update_norm"] > 0 for row in update.log)


def test_memory_reset_leaves_the_recurrent_weights_without_gradient():
    _, _, reset = _teach("lstm_reset", steps=6)
    assert all(float(p.grad.abs().sum()) == 0 for name, p in reset.lstm.named_parameters() if "weight_hh" in name)
    assert all(float(p.grad.abs().sum()) > 0 for name, p in reset.lstm.named_parameters() if "weight_ih" in name)
    assert all(float(h.abs().sum()) > 0 for h, _ in reset.state)  # its last step's memory, discarded at the next
    _, _, kept = _teach("lstm", steps=6)
    assert all(float(p.grad.abs().sum()) > 0 for name, p in kept.lstm.named_parameters() if "weight_hh" in name)


def test_direct_teacher_moves_the_dln_by_adam_and_trains_no_lstm():
    _, network, update = _teach("direct", steps=4, step_scale=1e-3)
    start = LossNetwork(seed=0, widths=(5, 5))
    moved = torch.cat([(p - q).detach().flatten() for p, q in zip(network.parameters(), start.parameters())])
    assert 0 < float(moved.abs().max()) <= 2.01e-3  # two Adam steps: at most about lr per coordinate each
    assert all(p.grad is None for p in update.lstm.parameters())


def test_the_student_moves_only_at_the_end_of_each_window_and_batchnorm_follows_the_unroll():
    model, _, _ = _cnn_task()
    snapshots = []
    start = {k: v.clone() for k, v in model.state_dict().items()}
    _teach("lstm", steps=3, unroll=3, on_step=lambda state: snapshots.append({k: v.clone() for k, v in state.stack.student(0).state_dict().items()}))
    assert all(torch.equal(snapshots[i][k], start[k]) for i in (0, 1) for k in start)  # parameters and BatchNorm statistics held
    assert not torch.equal(snapshots[2]["features.0.weight"], start["features.0.weight"])
    assert snapshots[2]["features.1.num_batches_tracked"] == 3  # the statistics saw exactly the 3 student steps


@pytest.mark.parametrize("kwargs, message", [
    ({"teacher": "oracle"}, "teacher must be one of"),
    ({"step_scale": 0.0}, "step_scale > 0"),
    ({"unroll": 0}, "unroll >= 1"),
    ({"val": (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))}, "non-empty"),
])
def test_teaching_update_errors(kwargs, message):
    model, x, y = _cnn_task()
    arguments = {"teacher": "lstm", "step_scale": 1e-2, "unroll": 2, "val_batch": 4, "seed": 0, "val": (x, y), **kwargs}
    with pytest.raises(ValueError, match=message):
        TeachingUpdate(model, LossNetwork(0), arguments.pop("val"), **arguments)


def test_teaching_update_needs_plain_sgd_on_its_own_student():
    with pytest.raises(ValueError, match="plain SGD"):
        _teach("lstm", steps=2, optimizer="adamw")
    model, x, y = _cnn_task()
    update = TeachingUpdate(model, LossNetwork(0), (x, y), teacher="lstm", step_scale=1e-2, unroll=1, val_batch=4, seed=0)
    other, _, _ = _cnn_task(seed=1)
    config = TrainConfig(epochs=1, batch_size=8, lr=0.1, optimizer="sgd", patience=None, max_steps=1)
    with pytest.raises(ValueError, match="its own student"):
        fit(other, get_objective("ce"), TrainSet(x, y), config=config, seed=0, update=update, progress=False, device="cpu")


def test_curve_steps_are_teaching_step_boundaries():
    regime = protocol.QUICK
    steps = regime.curve_steps()
    assert all(s % regime.unroll == 0 for s in steps) and steps[-1] == regime.steps - regime.steps % regime.unroll
    assert len(steps) == regime.evals


def test_step_scale_selection_takes_the_best_held_out_accuracy_and_the_smaller_scale_on_ties():
    frame = pd.DataFrame([
        {"method": protocol.L2T, "step_scale": 1e-2, "select_accuracy": 0.7}, {"method": protocol.L2T, "step_scale": 1e-3, "select_accuracy": 0.8},
        {"method": protocol.DIRECT, "step_scale": 1e-2, "select_accuracy": 0.6}, {"method": protocol.DIRECT, "step_scale": 1e-4, "select_accuracy": 0.6},
    ])
    assert protocol.select_step_scales(frame) == {protocol.L2T: 1e-3, protocol.DIRECT: 1e-4}


def test_quick_settings_use_their_one_scale_and_the_reset_reuses_l2t_dlns():
    chosen = protocol.settings("quick", replicates=5)
    scales = protocol.chosen_step_scales(chosen)
    assert scales == {protocol.L2T: chosen.step_grid[0], protocol.DIRECT: chosen.step_grid[0], protocol.RESET: chosen.step_grid[0]}
    assert chosen.replicates == 2


def test_train_cell_errors():
    regime = protocol.QUICK.__dict__
    with pytest.raises(ValueError, match="method must be one of"):
        protocol.train_cell(regime, "focal loss", None, 0)
    with pytest.raises(ValueError, match="takes a step_scale"):
        protocol.train_cell(regime, protocol.L2T, None, 0)
    with pytest.raises(ValueError, match="takes no step_scale"):
        protocol.train_cell(regime, protocol.CE, 1e-3, 0)
