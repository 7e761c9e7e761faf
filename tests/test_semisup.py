import pandas as pd
import pytest
import torch

from kdlib.cache import Cache
from kdlib.experiments import slam, unlabelled
from kdlib.semisup import SemiSupervisedStudent, SemiSupervisedTask, UnlabelledObjective, noisy_teacher_recipe, train_students
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
        name="toy", dataset="toy", n_labelled=n_l, seed=seed, classes=("a", "b", "c"),
        x_labelled=xl, y_labelled=yl, x_unlabelled=xu, y_unlabelled=yu, teacher_unlabelled=noisy_teacher(yu),
        x_val=xv, y_val=yv, teacher_val=noisy_teacher(yv), x_test=xt, y_test=yt, teacher_test=noisy_teacher(yt), teacher_seconds=0.0,
    )


STUDENT = SemiSupervisedStudent(hidden=8, train=TrainConfig(epochs=4, batch_size=32, lr=1e-2, patience=3))


def test_objectives_cover_every_method_with_consistent_shapes():
    task = _task()
    objectives = slam.objectives(task)
    names = [o.name for o in objectives]
    assert names[:3] == ["labels only", "hard distillation", "soft distillation"] and "SLaM" in names
    for o in objectives:
        assert o.targets.shape == (200, 3) and o.weights.shape == (200,)
    by_name = {o.name: o for o in objectives}
    assert by_name["labels only"].weights.sum() == 0
    confident = task.teacher_unlabelled.max(1).values >= 0.7
    assert torch.equal(by_name["threshold 0.7"].weights.bool(), confident)
    oracle = by_name["SLaM, oracle alpha"].alpha
    assert torch.equal(oracle.bool(), task.teacher_unlabelled.argmax(1) == task.y_unlabelled)
    assert (by_name["SLaM"].alpha >= 1 / 3).all() and (by_name["SLaM"].alpha <= 1).all()


def test_train_students_ignores_unlabelled_targets_with_zero_weight(tmp_path):
    task = _task()
    zero = torch.zeros(200)
    a = UnlabelledObjective("labels only", task.teacher_unlabelled, zero)
    b = UnlabelledObjective("labels only", torch.full((200, 3), 1 / 3), zero)
    slam_objective = slam.objectives(task)[-1]
    first = train_students(task, [a, slam_objective], seed=0, student=STUDENT, cache=Cache(tmp_path / "1"))
    second = train_students(task, [b, slam_objective], seed=0, student=STUDENT, cache=Cache(tmp_path / "2"))
    assert first[0]["val_accuracy"] == second[0]["val_accuracy"]
    assert first[1] == second[1]  # the other student is untouched by its neighbour's targets
    assert all(0 <= row["test_accuracy"] <= 1 for row in first)


def test_train_students_rejects_misaligned_objectives(tmp_path):
    task = _task()
    with pytest.raises(ValueError, match="targets must be"):
        train_students(task, [UnlabelledObjective("bad", torch.zeros(5, 3), torch.zeros(5))], seed=0, student=STUDENT, cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="no objectives"):
        train_students(task, [], seed=0, student=STUDENT, cache=Cache(tmp_path))


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


def test_noisy_teacher_recipe_per_profile():
    assert noisy_teacher_recipe("cifar10", "full").augment and not noisy_teacher_recipe("fashion_mnist", "full").augment
    assert noisy_teacher_recipe("fashion_mnist", "quick").steps < noisy_teacher_recipe("fashion_mnist", "full").steps
    config = noisy_teacher_recipe("fashion_mnist", "full").config(n_labelled=100)
    assert config.epochs == 400  # 100 examples at batch 64 -> 2 steps per epoch -> 400 epochs for about 800 steps
    with pytest.raises(ValueError, match="profile"):
        noisy_teacher_recipe("fashion_mnist", "medium")


def test_debiased_objective_trains_and_reports_weights_in_unit_interval(tmp_path):
    task = _task()
    error = torch.full((200,), 0.3)
    objectives = [
        UnlabelledObjective("soft", task.teacher_unlabelled, torch.ones(200)),
        UnlabelledObjective("weighted", task.teacher_unlabelled, torch.ones(200), teacher_error=error),
        UnlabelledObjective("weighted, perfect teacher", task.teacher_unlabelled, torch.ones(200), teacher_error=torch.zeros(200)),
    ]
    rows = train_students(task, objectives, seed=0, student=STUDENT, cache=Cache(tmp_path))
    assert "unlabelled_weights" not in rows[0]
    weights = rows[1]["unlabelled_weights"]
    assert weights.shape == (200,) and (weights >= 0).all() and (weights <= 1).all() and weights.min() < 1
    assert torch.equal(rows[2]["unlabelled_weights"], torch.ones(200))
    with pytest.raises(ValueError, match="teacher_error"):
        train_students(task, [UnlabelledObjective("bad", task.teacher_unlabelled, torch.ones(200), teacher_error=torch.zeros(3))], seed=0, student=STUDENT, cache=Cache(tmp_path))


def test_weighted_objectives_and_weight_separation(tmp_path):
    from kdlib.experiments import weighted

    task = _task()
    by_name = {o.name: o for o in weighted.objectives(task)}
    right = task.teacher_unlabelled.argmax(1) == task.y_unlabelled
    assert torch.equal(by_name[weighted.ORACLE["soft"]].weights.bool(), right)
    r1 = by_name[weighted.R1["hard"]].weights
    assert torch.allclose(by_name[weighted.CONSTANT["hard"]].weights, torch.full((200,), r1.mean().item()))
    assert by_name[weighted.WEIGHTED["soft"]].teacher_error is not None and torch.equal(by_name[weighted.WEIGHTED["soft"]].weights, torch.ones(200))
    assert torch.equal(by_name[weighted.WEIGHTED["hard"]].targets.sum(1), torch.ones(200))  # one-hot
    assert "SLaM" in by_name
    rows, pool = weighted.evaluate(task, STUDENT, cache=Cache(tmp_path))
    assert all("unlabelled_weights" not in r for r in rows) and len(pool) == 200
    assert {"R1 (1 - p)", "R2 (weighted hard)", "R2 (weighted soft)"} <= set(pool.columns)
    separation = weighted.weight_separation(pool)
    assert len(separation) == 3 and separation["AUC (right vs wrong)"].between(0, 1).all()
