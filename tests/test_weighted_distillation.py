"""Notebook 03's method under test (the expected clean loss), its ablations and the sweep's methods and diagnostics."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlib.cache import Cache
from kdlib.distill import get_objective
from kdlib.distill.weighted import backward_corrected_loss, correctness_weight, debiasing_weight, expected_clean_target, teacher_error
from kdlib.experiments import unlabelled, weighted
from kdlib.train import Batch
from tests.test_unlabelled import STUDENT, _task


def test_issue_binary_check_flip_model_and_deterministic_teacher():
    # p = 0.3, the student's loss 0.4 on the true label and 2.0 on the other (issue 18)
    check = weighted.unbiasedness_check(0.3, 0.4, 2.0)
    flip, fixed = check["flip model"], check["deterministic teacher"]
    assert flip["clean loss"] == pytest.approx(0.4) and fixed["clean loss"] == pytest.approx(0.7 * 0.4 + 0.3 * 2.0)
    assert flip["backward correction (Natarajan et al. 2013)"] == pytest.approx(0.4)  # unbiased under flips
    assert flip["R2 (distortion, clipped at 1)"] == pytest.approx(0.7 * 0.4 / 2.2 + 0.3 * 2.0)  # 0.727: biased
    assert flip["R1 (1 - p)"] == pytest.approx(0.7 * 0.88)
    # a deterministic teacher: the method is the clean loss; the backward correction goes negative (unbounded below)
    assert fixed["the method: expected clean loss"] == pytest.approx(0.88)
    assert fixed["backward correction (Natarajan et al. 2013)"] == pytest.approx((0.7 * 0.4 - 0.3 * 2.0) / 0.4)
    assert fixed["R2 (distortion, clipped at 1)"] < fixed["unweighted"] < fixed["clean loss"]


def test_backward_correction_is_unbiased_under_uniform_flips_for_many_classes():
    g = torch.Generator().manual_seed(0)
    classes, p = 4, 0.45
    losses = torch.rand(classes, generator=g) * 3
    flipped = torch.full((classes,), p / (classes - 1))
    for true in range(classes):
        teacher_says = flipped.clone()
        teacher_says[true] = 1 - p
        corrected = backward_corrected_loss(losses.expand(classes, classes), torch.arange(classes), torch.full((classes,), p))
        assert (teacher_says * corrected).sum().item() == pytest.approx(losses[true].item(), abs=1e-5)
    with pytest.raises(ValueError, match="singular"):
        backward_corrected_loss(losses[None], torch.tensor([0]), torch.tensor([0.75]))


def test_expected_clean_target_hand_values():
    probs, error = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), torch.tensor([0.4, 0.0])
    soft = expected_clean_target(probs, error, "soft")
    hard = expected_clean_target(probs, error, "hard")
    assert torch.allclose(soft[0], torch.tensor([0.6, 0.4 * 2 / 3, 0.4 / 3]), atol=1e-5)
    assert torch.allclose(hard[0], torch.tensor([0.6, 0.2, 0.2]))
    assert torch.equal(hard[1], torch.tensor([0.0, 0.0, 1.0]))  # p = 0: hard distillation
    # a calibrated soft teacher (top-1 probability = 1 - p) already is the target
    assert torch.allclose(expected_clean_target(probs[:1], torch.tensor([0.3]), "soft"), probs[:1], atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_clean_target(probs, torch.tensor([1.2, 0.0]))
    with pytest.raises(ValueError, match="target"):
        expected_clean_target(probs, error, "medium")


def _deterministic_teacher(n, g):
    """Three classes; the teacher is right with probability 0.4 + 0.6 * margin, else the truth is one of its two other
    classes, drawn by its probabilities there."""
    margin = torch.rand(n, generator=g)
    second = (1 - margin) * (2 + torch.rand(n, generator=g)) / 6  # top-1 = top-2 + margin, top-2 >= top-3 >= 0
    probs = torch.stack([second + margin, second, 1 - 2 * second - margin], 1)
    others = probs[:, 1:] / probs[:, 1:].sum(1, keepdim=True)
    right = torch.rand(n, generator=g) < 0.4 + 0.6 * margin
    labels = torch.where(right, 0, 1 + torch.multinomial(others, 1, generator=g)[:, 0])
    return probs, labels


def test_expected_clean_loss_estimates_the_clean_loss_with_p_fitted_on_validation():
    g = torch.Generator().manual_seed(1)
    probs_val, y_val = _deterministic_teacher(4000, g)
    probs, y = _deterministic_teacher(20000, g)
    error = teacher_error(probs_val, y_val, probs)
    log_f = F.log_softmax(torch.randn(20000, 3, generator=g) + torch.tensor([1.0, 0.0, -0.5]), 1)  # any fixed student
    clean = -log_f.gather(1, y[:, None]).mean()
    method = -(expected_clean_target(probs, error, "soft") * log_f).sum(1).mean()
    unweighted = -log_f[:, 0].mean()
    r1 = -(correctness_weight(error) * log_f[:, 0]).mean()
    assert method.item() == pytest.approx(clean.item(), abs=0.02)
    assert abs(unweighted - clean) > 0.1 and abs(r1 - clean) > 0.1  # both biased, by far more than the method's error


def test_objective_is_cross_entropy_to_the_target_on_the_pool_and_on_labels_in_l():
    teacher = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1]]))
    outputs = torch.tensor([[0.3, -0.2, 0.1], [1.0, 0.0, -1.0]])
    error = torch.tensor([0.5, 0.4])
    loss = get_objective("expected_clean_loss", teacher_error=error, target="soft")(outputs, Batch(torch.arange(2), torch.tensor([2, -1]), teacher, {}, 0))
    log_f = F.log_softmax(outputs, 1)
    assert loss[0].item() == pytest.approx(-log_f[0, 2].item())  # labelled: its true label
    assert loss[1].item() == pytest.approx(-(0.6 * log_f[1, 0] + 0.4 * (2 / 3 * log_f[1, 1] + 1 / 3 * log_f[1, 2])).item(), abs=1e-5)
    with pytest.raises(ValueError, match="vector"):
        get_objective("expected_clean_loss", teacher_error=torch.zeros(2, 2))


def test_r2_weights_stay_in_unit_interval():
    w = debiasing_weight(torch.tensor([0.3, 0.3]), torch.tensor([5.0, 0.2]))
    assert torch.allclose(w, torch.tensor([1 / 2.2, 1.0]))
    assert math.isclose(correctness_weight(torch.tensor([0.3])).item(), 0.7, rel_tol=1e-6)


def test_methods_are_the_declared_stack_with_training_set_aligned_data():
    task = _task()
    specs = weighted.methods(task)
    assert list(specs) == weighted.METHODS and len(specs) == 9
    for spec in specs.values():
        for value in spec.values():
            if isinstance(value, torch.Tensor):
                assert len(value) == 40 + 200  # L then U
    right = task.teacher_unlabelled.argmax(1) == task.y_unlabelled
    assert torch.equal(specs[weighted.ORACLE["hard"]]["weights"][40:].bool(), right)
    p = specs[weighted.WEIGHTED["soft"]]["teacher_error"][40:]
    assert torch.allclose(specs[weighted.R1]["weights"][40:], 1 - p)
    assert torch.allclose(specs[weighted.CONSTANT]["teacher_error"][40:], torch.full((200,), p.mean().item()))
    assert specs[weighted.WEIGHTED["hard"]] == {**specs[weighted.WEIGHTED["soft"]], "target": "hard"}
    assert weighted.PILOT_METHODS == [m for m in weighted.METHODS if m in weighted.PILOT_METHODS]  # the full stack's order


def test_a_stack_trains_and_the_diagnostics_separate_right_from_wrong(tmp_path):
    task = _task()
    rows = unlabelled.evaluate(task, weighted.methods, STUDENT, cache=Cache(tmp_path))
    by_method = {r["method"]: r for r in rows}
    assert set(by_method) == {*weighted.METHODS, "teacher"}
    r2 = by_method[weighted.R2]["unlabelled_weights"]
    table = weighted.diagnostics(task, r2).set_index("weighting")
    assert list(table.index) == ["1 - p(x): weighted, R1", "R2 (final student)", "oracle"]
    oracle = table.loc["oracle"]
    assert oracle["AUC (right vs wrong)"] == 1.0 and oracle["mean weight, teacher right"] == 1.0 and oracle["mean weight, teacher wrong"] == 0.0
    right = task.teacher_unlabelled.argmax(1) == task.y_unlabelled
    assert table["teacher error on U"].iloc[0] == pytest.approx(1 - right.float().mean().item())
    assert table["AUC (right vs wrong)"].between(0, 1).all()


def test_a_changed_stack_changes_the_cells_cache_context(monkeypatch):
    from kdlib.experiments import unlabelled

    before = unlabelled.sweep_context("kdlib.experiments.weighted")
    assert before["methods"] == weighted.METHODS
    monkeypatch.setattr(weighted, "METHODS", weighted.METHODS[:-1])
    assert unlabelled.sweep_context("kdlib.experiments.weighted") != before
    assert "methods" not in unlabelled.sweep_context("kdlib.experiments.slam")  # its stack depends on the task; the version keys it


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_the_sweep_is_one_size_per_dataset_of_notebook_02s_so_the_teachers_are_shared(profile):
    from kdlib.experiments import unlabelled

    chosen, shared = weighted.sweep(profile), unlabelled.sweeps(profile)
    assert all(len(sizes) == 1 and set(sizes) <= set(shared[d]) for d, sizes in chosen.items())
    assert weighted.experiments(profile) == [f"{d} |L|={sizes[0]}" for d, sizes in chosen.items()]


def _records(sweep, seeds=(0, 1, 2)):
    """Test and validation accuracy per method: soft distillation 0.70; weighted soft +2 pp at each dataset's noisiest
    setting and +1 pp elsewhere (+-0.1 pp by seed); the oracle +5 pp on dataset "a" and +0.1 pp on "b"."""
    from kdlib.results import Record, to_frame

    records = []
    for dataset, sizes in sweep.items():
        for n in sizes:
            for seed in seeds:
                jitter = 0.001 * (seed - 1)
                gain = (0.02 if n == sizes[0] else 0.01) + jitter
                values = {m: 0.70 for m in weighted.METHODS} | {weighted.WEIGHTED["soft"]: 0.70 + gain, weighted.WEIGHTED["hard"]: 0.70 + gain,
                                                                weighted.ORACLE["soft"]: 0.75 if dataset == "a" else 0.701 + jitter,
                                                                weighted.ORACLE["hard"]: 0.75 if dataset == "a" else 0.701 + jitter}
                records += [Record(f"{dataset} |L|={n}", m, "-", seed, metric, v) for m, v in values.items() for metric in ("test_accuracy", "val_accuracy")]
    return to_frame(records)


def test_claims_evidence_gates_on_the_oracle_and_grades():
    import pandas as pd

    from kdlib.claims import weighted as claims
    from kdlib.results import grade

    sweep = {"a": (10, 30), "b": (5,)}
    diagnostics = pd.DataFrame([{"weighting": "1 - p(x): weighted, R1", "dataset": d, "n_labelled": n, "seed": s, "AUC (right vs wrong)": 0.7 + 0.01 * s}
                                for d, sizes in sweep.items() for n in sizes for s in range(3)])
    evidence, gates = claims.evidence(_records(sweep), diagnostics, sweep)
    assert evidence["weighted-beats-vanilla-noisy"]["a |L|=10"].mean == pytest.approx(2.0)
    assert evidence["weighted-beats-vanilla-noisy"]["a |L|=30"].mean == pytest.approx(1.0)
    assert "gain-shrinks" not in evidence  # declared out of scope: one |L| per dataset
    assert evidence["approaches-oracle"]["a |L|=10"].mean == pytest.approx(2.0 - 2.5)  # halfway to the oracle's +5
    assert evidence["confidence-predicts-correctness"]["b |L|=5"].mean == pytest.approx(0.21)
    verdicts = {v.declaration.id: v for v in grade(claims.DECLARATIONS, evidence, gates)}
    assert verdicts["weighted-beats-vanilla-noisy"].gated_out == ("b |L|=5",)  # the oracle gains 0.1 pp there
    assert verdicts["weighted-beats-vanilla-noisy"].verdict == "reproduced"
    assert verdicts["gain-shrinks"].verdict == "out of scope here"
    assert verdicts["approaches-oracle"].verdict == "contradicted"
