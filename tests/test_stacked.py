"""Stacked students: one (M, B, K) contract, shared initialisation, masked subclass slots, sparse inputs."""

import pytest
import scipy.sparse
import torch
from torch import nn

from kdlib.models.stacked import SingleStudent, StackedCNN, StackedMLP, as_stack, rows
from kdlib.models.vision import CNNConfig

CONFIG = CNNConfig(in_channels=3, num_classes=4, widths=(4, 6), embed_dim=5)


def test_shared_init_gives_every_student_the_same_function_on_its_shared_slots():
    model = StackedMLP(5, 7, 2, subclasses=[1, 3, 3], seed=0)
    out = model(torch.randn(4, 5)).view(3, 4, 2, 3)
    assert torch.allclose(out[0, :, :, 0], out[1, :, :, 0]) and torch.allclose(out[1], out[2])
    assert (out[0, :, :, 1:] < -1e8).all()  # unused slots are masked
    scores = model.class_scores(model(torch.randn(4, 5)))
    assert scores.shape == (3, 4, 2)


def test_stacked_student_matches_an_ordinary_mlp():
    model = StackedMLP(5, 7, 3, subclasses=[1, 1], seed=0, shared_init=False)
    reference = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        reference[0].weight.copy_(model.w1[:, 7:14].T)
        reference[0].bias.copy_(model.b1[7:14])
        reference[2].weight.copy_(model.w2[1].T)
        reference[2].bias.copy_(model.b2[1])
    x = torch.randn(6, 5)
    assert torch.allclose(model(x)[1], reference(x), atol=1e-6)


def test_student_views_are_per_student_and_write_through():
    model = StackedMLP(5, 7, 3, subclasses=[1, 1, 1], seed=0, shared_init=False)
    views = dict(model.student_views())
    assert set(views) == {"w1", "b1", "w2", "b2"} and all(v.shape[0] == 3 for v in views.values())
    views["w1"][torch.tensor([False, True, False])] = 0.0
    assert (model.w1[:, 7:14] == 0).all() and (model.w1[:, :7] != 0).any()
    cnn = StackedCNN(CONFIG, count=2, seed=0)
    names = dict(cnn.student_views())
    assert "features.1.running_mean" in names and not any(n.endswith("num_batches_tracked") for n in names)
    assert all(v.shape[0] == 2 for v in names.values())


def test_stacked_cnn_gradients_stay_within_a_student():
    stacked = StackedCNN(CONFIG, count=2, seed=1)
    logits = stacked(torch.randn(5, 3, 8, 8))
    assert torch.allclose(logits[0], logits[1])  # same initial weights
    logits[0].sum().backward()  # a loss on student 0 only
    assert stacked.w_head.grad[1].abs().max() == 0 and stacked.w_head.grad[0].abs().max() > 0
    assert stacked.features[0].weight.grad[CONFIG.widths[0]:].abs().max() == 0


def test_sparse_and_dense_inputs_agree():
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    sparse = scipy.sparse.csr_matrix(dense.numpy())
    idx = torch.tensor([2, 0])
    assert torch.equal(rows(sparse, idx).to_dense(), rows(dense, idx))
    model = StackedMLP(2, 3, 2, subclasses=[1, 2], seed=0)
    assert torch.allclose(model(rows(sparse, idx)), model(rows(dense, idx)))


def test_a_plain_module_is_a_stack_of_one():
    module = nn.Linear(4, 3)
    stack = as_stack(module)
    assert isinstance(stack, SingleStudent) and stack.num_students == 1 and stack.student(0) is module
    assert stack(torch.randn(2, 4)).shape == (1, 2, 3)
    assert as_stack(stack) is stack


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="invalid stacked MLP"):
        StackedMLP(5, 7, 2, subclasses=[0], seed=0)
    with pytest.raises(ValueError, match="expected images"):
        StackedCNN(CONFIG, count=2, seed=0)(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least one"):
        StackedCNN(CONFIG, count=0, seed=0)


def test_stacked_cnn_subclass_slots_are_masked_and_match_the_standalone_student():
    cnn = StackedCNN(CONFIG, count=2, seed=0, shared_init=False, subclasses=[1, 3])
    x = torch.randn(3, 3, 8, 8)
    out = cnn.eval()(x)
    assert out.shape == (2, 3, 4 * 3)
    assert (out[0].view(3, 4, 3)[:, :, 1:] <= -1e8).all() and (out[1] > -1e8).all()
    for m in range(2):
        assert torch.allclose(cnn.student(m).eval()(x), out[m], atol=1e-4)
    scores = cnn.class_scores(out)
    assert scores.shape == (2, 3, 4) and torch.allclose(scores[0], out[0].view(3, 4, 3)[:, :, 0], atol=1e-5)
    with pytest.raises(ValueError, match="one subclass count per student"):
        StackedCNN(CONFIG, count=2, seed=0, subclasses=[1])
