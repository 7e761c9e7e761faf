import math

import pytest
import torch

from kdlib.distill.correctness import CorrectnessCalibration
from kdlib.distill.weighted import correctness_weight, debiasing_weight, distortion, teacher_error


def _noisy_validation(n=3000, seed=0):
    """Binary teacher whose top-1 is right with probability 0.5 + margin / 2."""
    g = torch.Generator().manual_seed(seed)
    margin = torch.rand(n, generator=g)
    probs = torch.stack([0.5 + margin / 2, 0.5 - margin / 2], 1)
    labels = torch.where(torch.rand(n, generator=g) < 0.5 + margin / 2, 0, 1)
    return probs, labels


def test_distortion_matches_hand_computed_binary_and_multiclass_values():
    # binary: the alternative is the other class; f = (0.8, 0.2), teacher says class 0
    logits = torch.log(torch.tensor([[0.8, 0.2]]))
    assert torch.allclose(distortion(logits, torch.tensor([[0.9, 0.1]])), torch.tensor([math.log(0.2) / math.log(0.8)]))
    # three classes: the teacher's other classes weighted by its probabilities (0.2 / 0.1 -> 2/3, 1/3)
    f = torch.tensor([[0.5, 0.3, 0.2]])
    expected = -(2 / 3 * math.log(0.3) + 1 / 3 * math.log(0.2)) / -math.log(0.5)
    assert torch.allclose(distortion(torch.log(f), torch.tensor([[0.7, 0.2, 0.1]])), torch.tensor([expected]), atol=1e-5)
    # a teacher with no mass elsewhere: uniform over the other classes
    expected_uniform = -(0.5 * math.log(0.3) + 0.5 * math.log(0.2)) / -math.log(0.5)
    assert torch.allclose(distortion(torch.log(f), torch.tensor([[1.0, 0.0, 0.0]])), torch.tensor([expected_uniform]), atol=1e-4)
    with pytest.raises(ValueError, match="disagree"):
        distortion(torch.zeros(2, 3), torch.zeros(2, 4))


def test_debiasing_weight_closed_form_clip_and_unbiasedness():
    error, d = torch.tensor([0.0, 0.2, 0.2, 0.5]), torch.tensor([7.0, 3.0, 0.5, 1.0])
    w = debiasing_weight(error, d)
    assert torch.allclose(w, torch.tensor([1.0, 1 / (0.8 + 0.2 * 3), 1.0, 1.0]))
    # unbiased where unclipped: w * E_noise[loss] = clean loss, with E_noise[loss] = (1-p) l_t + p l_alt
    p, l_t, l_alt = 0.2, 0.4, 1.2
    weight = debiasing_weight(torch.tensor([p]), torch.tensor([l_alt / l_t]))
    assert torch.allclose(weight * ((1 - p) * l_t + p * l_alt), torch.tensor([l_t]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        debiasing_weight(torch.tensor([1.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="negative"):
        debiasing_weight(torch.tensor([0.5]), torch.tensor([-1.0]))


def test_weights_lie_in_unit_interval_and_are_monotone_in_estimated_teacher_accuracy():
    probs, labels = _noisy_validation()
    grid = torch.linspace(0, 1, 101)
    grid_probs = torch.stack([0.5 + grid / 2, 0.5 - grid / 2], 1)
    error = teacher_error(probs, labels, grid_probs)
    accuracy = 1 - error
    order = accuracy.argsort()
    for weights in (correctness_weight(error), debiasing_weight(error, torch.full((101,), 4.0))):
        assert (weights >= 0).all() and (weights <= 1).all()
        assert (weights[order][1:] >= weights[order][:-1] - 1e-7).all()  # non-decreasing in estimated accuracy
    assert error[-1] < 0.1 and error[0] > 0.35


def test_perfect_teacher_gets_weight_one_everywhere():
    probs = torch.softmax(3 * torch.randn(300, 3, generator=torch.Generator().manual_seed(0)), 1)
    labels = probs.argmax(1)  # the teacher is always right
    error = teacher_error(probs, labels, torch.softmax(torch.randn(50, 3), 1))
    assert torch.equal(error, torch.zeros(50))
    assert torch.equal(correctness_weight(error), torch.ones(50))
    assert torch.equal(debiasing_weight(error, torch.rand(50) * 10), torch.ones(50))


def test_empty_or_single_class_validation_set_is_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        teacher_error(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.ones(1, 3) / 3)
    probs = torch.softmax(torch.randn(20, 3), 1)
    with pytest.raises(ValueError, match="single class"):
        teacher_error(probs, torch.zeros(20, dtype=torch.long), probs)
    with pytest.raises(ValueError, match="floor"):
        CorrectnessCalibration(probs, torch.arange(20) % 3, floor=2.0)
