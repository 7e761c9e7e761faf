import pytest
import torch

from kdlib import teachers
from kdlib.cache import Cache
from kdlib.models import MLP
from kdlib.tasks import TransferTask
from kdlib.train import TrainConfig


def test_recipe_errors():
    with pytest.raises(ValueError, match="no vision teacher recipe for 'svhn'"):
        teachers.vision_recipe("svhn", "full")
    with pytest.raises(ValueError, match="labels must be one of"):
        teachers.vision_recipe("cifar10", "full", labels="mod3")
    with pytest.raises(ValueError, match="profile"):
        teachers.text_recipe("sst2", "fast")
    with pytest.raises(ValueError, match="unknown encoder"):
        teachers.text_recipe("sst2", "quick", encoder="bert-tiny")


def test_binarised_recipe_is_a_different_teacher():
    fine, mod2 = teachers.vision_recipe("cifar10", "full"), teachers.vision_recipe("cifar10", "full", labels="mod2")
    assert fine != mod2 and mod2.labels == "mod2"


def test_vision_teacher_trains_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(teachers._VISION, "digits", {"quick": dict(n_train=400, n_val=100, epochs=3), "full": {}, "augment": False})
    cache = Cache(tmp_path)
    first = teachers.vision_teacher("digits", "quick", cache=cache)
    assert first.test_accuracy > 0.5 and len(first.train_idx) == 400 and len(first.val_idx) == 100
    monkeypatch.setattr(teachers, "fit", lambda *a, **k: pytest.fail("a cached teacher must not be retrained"))
    second = teachers.vision_teacher("digits", "quick", cache=cache)
    assert second.key == first.key and second.test_accuracy == first.test_accuracy
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)


def test_a_teacher_seed_is_another_teacher_and_seed_zero_keeps_the_shared_key(tmp_path, monkeypatch):
    monkeypatch.setitem(teachers._VISION, "digits", {"quick": dict(n_train=400, n_val=100, epochs=2), "full": {}, "augment": False})
    cache = Cache(tmp_path)
    shared = teachers.vision_teacher("digits", "quick", cache=cache)
    zero, other = (teachers.vision_teacher("digits", "quick", cache=cache, seed=s) for s in (0, 3))
    assert shared.key == zero.key != other.key and other.name.endswith("/seed3")
    assert list(other.train_idx) == list(shared.train_idx)  # the same split, other initial weights and batches
    assert not all(torch.equal(a, b) for a, b in zip(shared.model.parameters(), other.model.parameters()))
    with pytest.raises(ValueError, match="teacher seed must be >= 0"):
        teachers.vision_teacher("digits", "quick", cache=cache, seed=-1)


def test_transfer_task_trains_every_method():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=g)
    x = torch.randn(200, 4, generator=g) + 2 * y.float().unsqueeze(1)
    task = TransferTask(
        name="toy", x_train=x[:120], y_train=y[:120], teacher_train=torch.stack([4 - x[:120].sum(1), x[:120].sum(1) - 4], 1),  # the Bayes boundary
        x_val=x[120:160], y_val=y[120:160], x_test=x[160:], y_test=y[160:],
        make_student=lambda seed: MLP(4, 2, hidden=(16,)), student_description={"kind": "MLP", "hidden": (16,)},
        methods={"alone": {"name": "ce"}, "kd": {"name": "kd", "temperature": 2.0}}, config=TrainConfig(epochs=30, batch_size=32, lr=1e-2),
    )
    rows = task.train(["alone", "kd"], seed=0)
    assert [r["method"] for r in rows] == ["alone", "kd"] and min(r["test_accuracy"] for r in rows) > 0.7
    with pytest.raises(ValueError, match="unknown methods"):
        task.train(["dkd"], seed=0)
    with pytest.raises(ValueError, match="must align"):
        TransferTask(**{**task.__dict__, "y_train": y[:10], "_fingerprint": None})
