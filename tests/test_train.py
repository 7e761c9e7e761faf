import pytest
import torch
import torch.nn.functional as F

from kdlib.models import MLP
from kdlib.train import TrainConfig, evaluate, fit, set_seed


def _blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + 2.5 * (2 * y.float() - 1).unsqueeze(1)
    return x, y


def _train(seed, config=TrainConfig(epochs=5, batch_size=32, patience=None)):
    x, y = _blobs()
    set_seed(seed)
    model = MLP(5, 2, hidden=(8,))
    history = fit(model, F.cross_entropy, x, (y,), config=config, seed=seed, val=_blobs(100, 1), progress=False)
    return model, history


def test_learns_a_separable_problem():
    model, history = _train(0)
    assert evaluate(model, *_blobs(200, 2)) > 0.97
    assert history.steps == 5 * 13 and len(history.val_accuracy) == 5


def test_deterministic_for_a_seed():
    a, _ = _train(3)
    b, _ = _train(3)
    c, _ = _train(4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_early_stopping_restores_the_best_weights():
    x, y = _blobs()
    x_val, y_val = _blobs(100, 1)
    flipped = 1 - y_val  # validation labels that only get worse as the model learns
    set_seed(0)
    model = MLP(5, 2, hidden=(8,))
    history = fit(model, F.cross_entropy, x, (y,), config=TrainConfig(epochs=20, batch_size=32, patience=2, evals_per_epoch=4),
                  seed=0, val=(x_val, flipped), progress=False)
    assert history.stopped_early and history.steps < 20 * 13
    assert evaluate(model, x_val, flipped) == pytest.approx(history.best_val_accuracy)
    assert history.best_val_accuracy == max(history.val_accuracy)


def test_bad_input_is_rejected():
    model = MLP(5, 2)
    with pytest.raises(ValueError, match="empty training set"):
        fit(model, F.cross_entropy, torch.zeros(0, 5), (torch.zeros(0, dtype=torch.long),), config=TrainConfig(), seed=0)
    with pytest.raises(ValueError, match="align"):
        fit(model, F.cross_entropy, torch.zeros(4, 5), (torch.zeros(3, dtype=torch.long),), config=TrainConfig(), seed=0)
    with pytest.raises(ValueError, match="empty set"):
        evaluate(model, torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="invalid training config"):
        TrainConfig(lr=0)
