import pandas as pd
import pytest
import torch

from kdlib.cache import Cache
from kdlib.experiments import slam, unlabelled
from kdlib.experiments.unlabelled import SemiSupervisedStudent, train_students
from kdlib.tasks import SemiSupervisedTask
from kdlib.teachers import few_label_recipe
from kdlib.train import TrainConfig


def _task(n_l=40, n_u=200, dim=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 2 * torch.randn(classes, dim, generator=g)

    def draw(n):
        y = torch.arange(n) % classes
        return centres[y] + torch.randn(n, dim, generator=g), y

    (xl, yl), (xu, yu), (xv, yv), (xt, yt) = draw(n_l), draw(n_u), draw(60), draw(90)

    def noisy_teacher(y):  # right 70% of the time, confident either way
        wrong = torch.rand(len(y), generator=g) < 0.3
        label = torch.where(wrong, (y + 1) % classes, y)
        return torch.full((len(y), classes), 0.05).scatter(1, label[:, None], 0.9)

    return SemiSupervisedTask(
        name="toy", dataset="toy", n_labelled=n_l, seed=seed, classes=tuple("abc"[:classes]),
        x_labelled=xl, y_labelled=yl, x_unlabelled=xu, y_unlabelled=yu, teacher_unlabelled=noisy_teacher(yu),
        x_val=xv, y_val=yv, teacher_val=noisy_teacher(yv), x_test=xt, y_test=yt, teacher_test=noisy_teacher(yt),
    )


STUDENT = SemiSupervisedStudent("mlp", TrainConfig(epochs=4, batch_size=32, lr=1e-2, patience=3), (("hidden", 8),))


def test_methods_cover_every_method_with_training_set_aligned_data():
    task = _task()
    methods = slam.methods(task)
    names = list(methods)
    assert names[:3] == ["labels only", "hard distillation", "soft distillation"] and "SLaM" in names
    for spec in methods.values():
        for value in spec.values():
            if isinstance(value, torch.Tensor):
                assert len(value) == 40 + 200  # L then U
    assert methods["threshold 0.9"] == {"name": "confidence_threshold", "threshold": 0.9}
    oracle = methods["SLaM, oracle alpha"]["alpha"][40:]
    right = task.teacher_unlabelled.argmax(1) == task.y_unlabelled
    assert torch.equal(oracle.bool(), right)
    alpha = methods["SLaM"]["alpha"][40:]
    assert (alpha >= 0.5).all() and (alpha <= 1).all()  # restricted to the range where the unnormalised mix corrects
    ceiling = methods[slam.CEILING]["targets"]
    assert torch.equal(ceiling[:40], torch.nn.functional.one_hot(task.y_labelled, 3).float())
    assert torch.equal(ceiling[40:][right], task.teacher_unlabelled[right])  # the teacher's label where it is right
    assert torch.equal(ceiling[40:][~right].argmax(1), task.y_unlabelled[~right]) and (ceiling[40:][~right].max(1).values == 1).all()


def test_binary_tasks_drop_the_ablations_that_coincide_with_slam():
    task = _task(classes=2)
    names = set(slam.methods(task))
    assert "SLaM" in names and not names & set(slam.MULTICLASS_ONLY)


def test_training_set_joins_labels_and_the_teachers_pool():
    task = _task()
    train = task.training_set()
    assert len(train.labels) == 240 and (train.labels[:40] == task.y_labelled).all() and (train.labels[40:] == -1).all()
    assert torch.allclose(torch.softmax(train.teacher[40:], 1), task.teacher_unlabelled, atol=1e-6)


def test_a_student_does_not_depend_on_its_neighbours_targets(tmp_path):
    task = _task()
    uniform = {"name": "weighted_distillation", "weights": task.on_training_set(torch.zeros(200)), "target": "soft"}
    slam_method = slam.slam_method(task)
    first = train_students(task, {"labels only": {"name": "ce"}, "SLaM": slam_method}, seed=0, student=STUDENT, cache=Cache(tmp_path / "1"))
    second = train_students(task, {"labels only": uniform, "SLaM": slam_method}, seed=0, student=STUDENT, cache=Cache(tmp_path / "2"))
    assert first[0]["val_accuracy"] == second[0]["val_accuracy"]  # zero weight on U is CE on L alone
    assert first[1] == second[1]  # the other student is untouched by its neighbour's objective
    assert all(0 <= row["test_accuracy"] <= 1 for row in first)


def test_train_students_rejects_misaligned_methods(tmp_path):
    task = _task()
    with pytest.raises(ValueError, match="aligned with the 240"):
        train_students(task, {"bad": {"name": "weighted_distillation", "weights": torch.zeros(5)}}, seed=0, student=STUDENT, cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="no methods"):
        train_students(task, {}, seed=0, student=STUDENT, cache=Cache(tmp_path))


def test_select_threshold_and_calibration():
    frame = pd.DataFrame(
        {
            "dataset": "d", "n_labelled": 10, "seed": [0, 1, 0, 1, 0, 1],
            "method": ["threshold 0.5", "threshold 0.5", "threshold 0.9", "threshold 0.9", "SLaM", "SLaM"],
            "val_accuracy": [0.6, 0.6, 0.7, 0.5, 0.9, 0.9], "test_accuracy": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )
    chosen = unlabelled.select_threshold(frame)
    kept = chosen[chosen.method == "confidence threshold"]
    assert list(kept.test_accuracy) == [0.1, 0.2]  # 0.5 has the better mean validation accuracy (0.60 vs 0.60 tie -> first)
    cal = slam.calibration(_task(), bins=4)
    assert len(cal) == 4 and cal.examples.sum() == 200
    assert cal.estimated.is_monotonic_increasing


def test_few_label_recipe_scales_with_the_labelled_set():
    assert few_label_recipe("cifar10", "full").augment and not few_label_recipe("fashion_mnist", "full").augment
    small, large = (few_label_recipe("fashion_mnist", "full").config(n_labelled=n) for n in (100, 9000))
    # 2 steps per epoch: 200 epochs for the 400-update floor, validated every 5 epochs, patience 40 epochs = 8 validations
    assert (small.epochs, small.epochs_per_eval, small.patience) == (200, 5, 8)
    assert (large.epochs, large.epochs_per_eval, large.patience) == (40, 1, 8)  # 141 steps per epoch: the epoch budget
    assert large.planned_steps(9000) > small.planned_steps(100)  # more labels, more updates
    assert few_label_recipe("fashion_mnist", "quick").config(100).planned_steps(100) < small.planned_steps(100)
    with pytest.raises(ValueError, match="profile"):
        few_label_recipe("fashion_mnist", "medium")


def test_student_kinds_build_stacks_of_the_right_shape():
    from kdlib.models.stacked import StackedCNN

    task = _task()
    stack = STUDENT.build(task, 3, seed=0)
    assert stack(task.x_val).shape == (3, 60, 3)
    cnn = unlabelled.student("full", "cifar10")
    assert cnn.kind == "cnn" and cnn.augment and not unlabelled.student("full", "fashion_mnist").augment
    images = SemiSupervisedTask(**{**task.__dict__, "x_labelled": torch.zeros(40, 1, 28, 28), "_fingerprint": None})
    assert isinstance(unlabelled.student("full", "fashion_mnist").build(images, 2, 0), StackedCNN)
    with pytest.raises(ValueError, match="token vocabulary"):
        unlabelled.student("full", "sst2").build(task, 2, 0)
    with pytest.raises(ValueError, match="kind"):
        SemiSupervisedStudent("rnn", STUDENT.train)


def test_full_students_get_at_least_1000_updates_within_2x_of_each_other_with_patience_a_quarter():
    updates = {}
    for dataset, pool in unlabelled.POOL["full"].items():
        train = unlabelled.student("full", dataset).train
        assert train.cosine and train.patience == train.epochs // 4
        assert pool >= 4 * max(unlabelled.SWEEPS["full"].get(dataset, (0,)))
        updates[dataset] = train.epochs * -(-pool // train.batch_size)
    assert max(updates.values()) <= 2 * min(updates.values()), updates  # a larger pool gets fewer epochs, not a longer run
    assert min(updates.values()) >= 1000


def test_pool_must_be_four_times_the_labelled_set(monkeypatch):
    monkeypatch.setitem(unlabelled.POOL, "quick", {"fashion_mnist": 300})
    with pytest.raises(ValueError, match="at least 4"):
        unlabelled.make_task("fashion_mnist", 100, 0, "quick")


def test_distortion_weighted_methods_train_and_report_weights_in_unit_interval(tmp_path):
    task = _task()
    methods = {
        "soft": {"name": "soft_distillation"},
        "weighted": {"name": "distortion_weighted_distillation", "teacher_error": task.on_training_set(torch.full((200,), 0.3), 0.0)},
        "weighted, perfect teacher": {"name": "distortion_weighted_distillation", "teacher_error": torch.zeros(240)},
    }
    rows = train_students(task, methods, seed=0, student=STUDENT, cache=Cache(tmp_path))
    assert "unlabelled_weights" not in rows[0]
    weights = rows[1]["unlabelled_weights"]
    assert weights.shape == (200,) and (weights >= 0).all() and (weights <= 1).all() and weights.min() < 1
    assert torch.equal(rows[2]["unlabelled_weights"], torch.ones(200))
