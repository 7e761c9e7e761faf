"""The training engine: one fit for M >= 1 students, per-student stopping that does not depend on the stack."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib.distill import get_objective
from kdlib.models import MLP, SmallCNN
from kdlib.models.stacked import StackedCNN, StackedMLP
from kdlib.models.vision import CNNConfig, FlipCrop, MixupCutmix
from kdlib.train import Batch, TrainConfig, TrainSet, UpdateContext, accuracy, default_update, evaluate, fit, predict_outputs

METHODS = ["ce", "kd", "kd_sum", "dkd", "dist", "ce", "kd", "dist"]  # 8 students, mixed objectives


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _images(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 10, 10, generator=g)
    y = (x[:, :, :5].mean((1, 2, 3)) > x[:, :, 5:].mean((1, 2, 3))).long()
    return x, y, torch.randn(n, 2, generator=g) + 2 * F.one_hot(y, 2)


def _vectors(n=300, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y, torch.randn(n, 2, generator=g) + 2 * F.one_hot(y, 2)


def _state(stack, index):
    return {k: v.detach().clone() for k, v in stack.student(index).state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_student_independent_of_stack(kind, float64):
    """Student m trained alone equals student m trained in a stack of 8 with other methods, early stopping included."""
    x, y, teacher = _images() if kind == "cnn" else _vectors()
    make = (lambda count: StackedCNN(CNNConfig(1, 2, (4, 6), 8), count, seed=3)) if kind == "cnn" else \
        (lambda count: StackedMLP(x.shape[1], 12, 2, [1] * count, seed=3))
    config = TrainConfig(epochs=8, batch_size=32, lr=2e-2, patience=2, evals_per_epoch=2)
    train, val = TrainSet(x[60:], y[60:], teacher[60:]), (x[:60], y[:60])
    stack = make(8)
    history = fit(stack, [get_objective(m) for m in METHODS], train, config=config, seed=5, val=val, progress=False)
    assert len(set(history.stopped_step.tolist())) > 1, "the test needs students that stop at different steps"
    for m in range(8):
        alone = make(1)
        single = fit(alone, [get_objective(METHODS[m])], train, config=config, seed=5, val=val, progress=False)
        assert single.best_step[0] == history.best_step[m] and single.stopped_step[0] == history.stopped_step[m]
        assert single.best_val_accuracy[0] == history.best_val_accuracy[m]
        stacked_state, alone_state = _state(stack, m), _state(alone, 0)
        for name in alone_state:
            assert torch.allclose(stacked_state[name], alone_state[name], rtol=0, atol=1e-10), (m, name)


def test_student_reproduces_the_stack_outputs():
    mlp = StackedMLP(5, 7, 3, subclasses=[1, 3, 2], seed=0, shared_init=False)
    x = torch.randn(6, 5)
    outputs = mlp(x)
    assert outputs.shape == (3, 6, 9)
    for m in range(3):
        assert torch.allclose(mlp.student(m)(x), outputs[m], atol=1e-4)
    assert (outputs[0].view(6, 3, 3)[:, :, 1:] <= -1e8).all()  # slots beyond S_m are masked
    cnn = StackedCNN(CNNConfig(3, 4, (4, 6), 5), 3, seed=0, shared_init=False)
    images = torch.randn(5, 3, 8, 8)
    for training in (True, False):
        cnn.train(training)
        out = cnn(images)
        for m in range(3):
            assert torch.allclose(cnn.student(m).train(training)(images), out[m], atol=1e-5)
    with pytest.raises(IndexError, match="out of range"):
        cnn.student(3)


def test_a_stopped_student_stops_changing_and_ends_at_its_best_step():
    x, y, teacher = _vectors()
    flipped = 1 - y[:60]  # validation labels that only get worse as a student learns: it stops early
    stack = StackedMLP(6, 8, 2, [1, 1], seed=0)
    snapshots = []

    def watch(state):
        snapshots.append((state.step, _state(state.stack, 0)))

    learns_the_flip = get_objective("class_targets", targets=F.one_hot(1 - y[60:], 2))  # keeps improving: keeps training
    history = fit(stack, [get_objective("ce"), learns_the_flip], TrainSet(x[60:], y[60:]), config=TrainConfig(epochs=10, batch_size=48, lr=1e-2, patience=2),
                  seed=0, val=(x[:60], flipped), on_step=watch, progress=False)
    assert 0 < history.stopped_step[0] < history.steps
    stop = history.stopped_step[0]
    after = [s for step, s in snapshots if step > stop]
    assert after and all(torch.equal(a[k], after[0][k]) for a in after for k in a)
    assert np.isclose(accuracy(stack, x[:60], flipped), history.best_val_accuracy).all()


def test_learns_and_is_deterministic_for_a_seed():
    x, y, _ = _vectors()

    def run(seed):
        model = MLP(6, 2, hidden=(8,))
        torch.manual_seed(seed)
        model = MLP(6, 2, hidden=(8,))
        history = fit(model, get_objective("ce"), TrainSet(x, y), config=TrainConfig(epochs=5, batch_size=32, patience=None, lr=1e-2), seed=seed, progress=False)
        return model, history

    (a, h), (b, _), (c, _) = run(3), run(3), run(4)
    assert evaluate(a, x, y) > 0.9 and h.steps == 5 * 10 and h.best_step[0] == h.steps
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_curves_schedule_and_sgd():
    x, y, _ = _vectors()
    model = MLP(6, 2, hidden=(8,))
    config = TrainConfig(epochs=4, batch_size=50, lr=0.1, patience=None, cosine=True, optimizer="sgd", momentum=0.9)
    lrs = []
    history = fit(model, get_objective("ce"), TrainSet(x, y), config=config, seed=0, curve_steps=(3, 12, 24), curve_sets={"train": (x, y)},
                  on_step=lambda s: lrs.append(None), progress=False)
    assert [c["step"] for c in history.curves] == [3, 12, 24] and history.curves[-1]["accuracy"][0] > 0.8
    assert len(lrs) == 24


def test_validation_every_few_epochs_counts_patience_in_validations():
    x, y, _ = _vectors()
    config = TrainConfig(epochs=7, batch_size=100, lr=1e-3, patience=None, epochs_per_eval=3)  # 3 steps per epoch
    history = fit(MLP(6, 2, hidden=(8,)), get_objective("ce"), TrainSet(x, y), config=config, seed=0, val=(x, y), progress=False)
    assert [step for step, _ in history.val_curve] == [9, 18]  # after epochs 3 and 6 only
    with pytest.raises(ValueError, match="invalid training config"):
        TrainConfig(epochs_per_eval=0)


def test_teacher_on_the_augmented_batch_and_transforms_are_seeded():
    x, y, _ = _images(n=64)
    seen = []

    class Teacher(torch.nn.Module):
        def forward(self, images):
            seen.append(images.clone())
            return torch.zeros(len(images), 2)

    def run():
        seen.clear()
        stack = StackedCNN(CNNConfig(1, 2, (4,), 4), 1, seed=0)
        fit(stack, get_objective("kd_sum"), TrainSet(x, y), config=TrainConfig(epochs=1, batch_size=32, patience=None), seed=1,
            teacher_model=Teacher(), transforms=[FlipCrop(2), MixupCutmix(2)], progress=False)
        return [s.clone() for s in seen]

    first, second = run(), run()
    assert len(first) == 2 and all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], x[:32])


def test_grey_image_students_and_teacher_run_channels_last_end_to_end():
    """A one-channel batch is contiguous in both layouts, so the weights decide the first convolution's layout: fit
    and predict_outputs must put them (students and teacher) in the model's layout, or every layer runs NCHW."""
    x, y, _ = _images(n=64)
    stack, teacher = StackedCNN(CNNConfig(1, 2, (4, 6), 4), 2, seed=0), SmallCNN(CNNConfig(1, 2, (4,), 4))
    layouts = []
    stack.features[2].register_forward_hook(lambda module, inputs, output: layouts.append(output.is_contiguous(memory_format=torch.channels_last)))
    fit(stack, get_objective("kd_sum"), TrainSet(x, y), config=TrainConfig(epochs=1, batch_size=32, patience=None), seed=0,
        teacher_model=teacher, progress=False)
    assert layouts == [True, True]
    assert all(p.stride()[1] == 1 for model in (stack, teacher) for p in model.parameters() if p.ndim == 4)  # channels innermost
    fresh = SmallCNN(CNNConfig(1, 2, (4, 6), 4))
    predict_outputs(fresh, x)
    assert all(p.stride()[1] == 1 for p in fresh.parameters() if p.ndim == 4)


def test_a_method_can_replace_the_update():
    x, y, _ = _vectors()
    calls = []

    def update(context: UpdateContext) -> None:
        calls.append(context.losses.shape)
        default_update(context)

    fit(MLP(6, 2, hidden=(4,)), get_objective("ce"), TrainSet(x, y), config=TrainConfig(epochs=1, batch_size=100, patience=None), seed=0, update=update,
        progress=False)
    assert calls == [torch.Size([1])] * 3


def test_bad_input_is_rejected():
    x, y, _ = _vectors()
    with pytest.raises(ValueError, match="empty training set"):
        TrainSet(torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="align"):
        TrainSet(x, y[:10])
    with pytest.raises(ValueError, match="one objective per student"):
        fit(StackedMLP(6, 4, 2, [1, 1], seed=0), [get_objective("ce")] * 3, TrainSet(x, y), config=TrainConfig(), seed=0)
    with pytest.raises(ValueError, match="one loss per example"):
        fit(MLP(6, 2), lambda outputs, batch: outputs.sum(), TrainSet(x, y), config=TrainConfig(epochs=1), seed=0, progress=False)
    with pytest.raises(ValueError, match="needs teacher logits"):
        fit(MLP(6, 2), get_objective("kd"), TrainSet(x, y), config=TrainConfig(epochs=1), seed=0, progress=False)
    with pytest.raises(ValueError, match="empty set"):
        evaluate(MLP(6, 2), torch.zeros(0, 6), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="invalid training config"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="Mixup"):
        MixupCutmix(2)(torch.zeros(2, 1, 4, 4), torch.tensor([0, -1]), torch.Generator())


def test_predict_outputs_shapes_for_modules_and_stacks():
    x, _, _ = _vectors(n=10)
    assert predict_outputs(MLP(6, 3), x, batch_size=4).shape == (10, 3)
    assert predict_outputs(StackedMLP(6, 4, 3, [1, 1], seed=0), x, batch_size=4).shape == (2, 10, 3)
    batch = Batch(torch.arange(2), torch.tensor([0, -1]), None, {}, 0)
    assert get_objective("ce")(torch.zeros(2, 3), batch)[1] == 0  # unlabelled examples have no label term
