import numpy as np
import pytest
import scipy.sparse
import torch
from torch import nn

from kdlib.stacked import StackedMLP, class_cross_entropy, fit_stacked, rows, stacked_accuracy, subclass_cross_entropy
from kdlib.train import TrainConfig


def test_shared_init_gives_every_student_the_same_function_on_its_shared_slots():
    model = StackedMLP(5, 7, 2, subclasses=[1, 3, 3], seed=0)
    x = torch.randn(4, 5)
    out = model(x)
    assert out.shape == (3, 4, 2, 3)
    assert torch.allclose(out[0, :, :, 0], out[1, :, :, 0]) and torch.allclose(out[1], out[2])
    assert (out[0, :, :, 1:] < -1e8).all()  # unused slots are masked


def test_stacked_student_matches_an_ordinary_mlp():
    model = StackedMLP(5, 7, 3, subclasses=[1, 1], seed=0, shared_init=False)
    reference = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        reference[0].weight.copy_(model.w1[:, 7:14].T)
        reference[0].bias.copy_(model.b1[7:14])
        reference[2].weight.copy_(model.w2[1].T)
        reference[2].bias.copy_(model.b2[1])
    x = torch.randn(6, 5)
    assert torch.allclose(model(x)[1, :, :, 0], reference(x), atol=1e-6)


def test_losses_match_closed_forms():
    logits = torch.log(torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]]))  # (M=1, B=1, C=2, S=2), already normalised
    sub_targets = torch.tensor([[[[0.0, 0.5], [0.5, 0.0]]]])
    expected = -(0.5 * np.log(0.2) + 0.5 * np.log(0.3))
    assert subclass_cross_entropy(logits, sub_targets).item() == pytest.approx(expected, rel=1e-6)
    class_targets = torch.tensor([[[1.0, 0.0]]])
    assert class_cross_entropy(logits, class_targets).item() == pytest.approx(-np.log(0.3), rel=1e-6)


def test_students_train_independently_and_restore_their_best_step():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = (x[:, 0] > 0).long()
    targets = torch.stack([nn.functional.one_hot(y, 2).float(), torch.full((400, 2), 0.5)])  # student 1 learns nothing

    def loss(logits, idx):
        return class_cross_entropy(logits, targets[:, idx])

    model = StackedMLP(6, 16, 2, subclasses=[1, 1], seed=0)
    history = fit_stacked(model, loss, x, val=(x, y), config=TrainConfig(epochs=30, batch_size=50, lr=1e-2, patience=5), seed=0, progress=False)
    accuracy = stacked_accuracy(model, x, y)
    assert accuracy[0] > 0.95
    assert np.allclose(accuracy, history.best_val_accuracy)


def test_sparse_and_dense_inputs_agree():
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    sparse = scipy.sparse.csr_matrix(dense.numpy())
    idx = torch.tensor([2, 0])
    assert torch.equal(rows(sparse, idx).to_dense(), rows(dense, idx))
    model = StackedMLP(2, 3, 2, subclasses=[1, 2], seed=0)
    assert torch.allclose(model(rows(sparse, idx)), model(rows(dense, idx)))


def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="invalid stacked MLP"):
        StackedMLP(5, 7, 2, subclasses=[0], seed=0)
    model = StackedMLP(5, 7, 2, subclasses=[1], seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        stacked_accuracy(model, torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty training set"):
        fit_stacked(model, lambda o, i: o.sum(), torch.zeros(0, 5), val=(torch.zeros(1, 5), torch.zeros(1)), config=TrainConfig(), seed=0)
