import numpy as np
import pytest
import torch
from torch import nn

from kdlib.experiments import kd_scaling
from kdlib.models.vision import mixup_cutmix
from kdlib.teachers import Teacher


def test_mixup_cutmix_mixes_targets_by_pixel_share():
    x = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    targets = torch.eye(2)
    for seed in range(20):
        mixed, soft = mixup_cutmix(x, targets, np.random.default_rng(seed))
        assert torch.allclose(soft.sum(1), torch.ones(2))
        # image 0 is zeros mixed with image 1 (ones): its mean pixel is the partner's share, whether Mixup or CutMix
        assert mixed[0].mean().item() == pytest.approx(soft[0, 1].item(), abs=1e-6)
    with pytest.raises(ValueError, match="soft or one-hot"):
        mixup_cutmix(x, torch.tensor([0, 1]), np.random.default_rng(0))


def test_training_subset_is_a_stratified_fraction_of_the_teachers_training_set():
    labels = np.arange(1000) % 10
    teacher = Teacher("t", "k", nn.Identity(), None, tuple("abcdefghij"), np.arange(800), np.arange(800, 1000), 0.0, 0.0, 0.0)
    subset = kd_scaling.training_subset(teacher, labels, 0.1, seed=0)
    assert len(subset) == 80 and set(subset) <= set(range(800))
    assert np.bincount(labels[subset], minlength=10).tolist() == [8] * 10
    assert len(kd_scaling.training_subset(teacher, labels, 1.0, seed=0)) == 800
    assert not np.array_equal(subset, kd_scaling.training_subset(teacher, labels, 0.1, seed=1))
    with pytest.raises(ValueError, match="fraction"):
        kd_scaling.training_subset(teacher, labels, 0.0, seed=0)


def test_bad_run_settings_raise():
    with pytest.raises(ValueError, match="increasing"):
        kd_scaling.ScalingRun(evals=(200, 100))
    with pytest.raises(ValueError, match="unknown recipe"):
        kd_scaling.run_scaling("fashion_mnist", 0.1, "randaugment", 0, kd_scaling.ScalingRun(evals=(10,)), "quick")
    assert kd_scaling.experiment_name("cifar10", 0.3, "standard", 4000) == "cifar10 30% standard 4000 steps"
