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
        mixed, soft = mixup_cutmix(x, targets, torch.Generator().manual_seed(seed))
        assert torch.allclose(soft.sum(1), torch.ones(2))
        # image 0 is zeros mixed with image 1 (ones): its mean pixel is the partner's share, whether Mixup or CutMix
        assert mixed[0].mean().item() == pytest.approx(soft[0, 1].item(), abs=1e-6)
    with pytest.raises(ValueError, match="soft or one-hot"):
        mixup_cutmix(x, torch.tensor([0, 1]), torch.Generator().manual_seed(0))


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


def test_gap_to_vanilla_kd_pairs_within_point_seed_and_step():
    import pandas as pd

    rows = []
    for seed, (ce, kd, dist) in enumerate([(0.5, 0.6, 0.7), (0.4, 0.5, 0.45)]):
        for step, shift in [(10, 0.0), (20, 0.1)]:
            rows += [{"dataset": "d", "fraction": 0.1, "recipe": "none", "seed": seed, "step": step, "method": m, "test_accuracy": a + shift}
                     for m, a in [("CE only", ce), ("vanilla KD", kd), ("DIST", dist)]]
    gaps = kd_scaling.gap_to_vanilla_kd(pd.DataFrame(rows))
    assert set(gaps.method) == {"CE only", "DIST"}
    dist = gaps[gaps.method == "DIST"].sort_values(["seed", "step"]).gap.to_numpy()
    np.testing.assert_allclose(dist, [0.1, 0.1, -0.05, -0.05])
    with pytest.raises(ValueError, match="vanilla KD"):
        kd_scaling.gap_to_vanilla_kd(pd.DataFrame(rows).query("method != 'vanilla KD'"))


def test_protocols_are_valid_and_checked():
    full = kd_scaling.protocol("full")
    assert kd_scaling.SMALL_WEAK in full.points and full.seeds >= 3
    assert {recipe for _, recipe in full.points} == set(kd_scaling.RECIPES)
    assert kd_scaling.protocol("quick", seeds=1).seeds == 1
    with pytest.raises(ValueError, match="profile"):
        kd_scaling.protocol("fast")
    with pytest.raises(ValueError, match="known recipes"):
        kd_scaling.ScalingProtocol(("cifar10",), ((0.1, "autoaugment"),), kd_scaling.ScalingRun(evals=(10,)), seeds=1)
    with pytest.raises(ValueError, match="seeds"):
        kd_scaling.ScalingProtocol(("cifar10",), ((0.1, "none"),), kd_scaling.ScalingRun(evals=(10,)), seeds=0)


def test_gap_shrinkage_pairs_seeds_and_pools_pairs():
    import pandas as pd

    rows = []
    for dataset, offset in [("a", 0.0), ("b", 0.01)]:
        for seed, noise in enumerate([0.0, 0.002, -0.002]):
            rows += [{"dataset": dataset, "fraction": 0.1, "recipe": "none", "step": 100, "seed": seed, "method": "DIST", "gap": 0.03 + offset + noise},
                     {"dataset": dataset, "fraction": 1.0, "recipe": "none", "step": 100, "seed": seed, "method": "DIST", "gap": 0.01 + offset + noise}]
    change = kd_scaling.gap_shrinkage(pd.DataFrame(rows), "DIST", [((0.1, "none", 100), (1.0, "none", 100))])
    assert change.n == 6 and change.mean_diff == pytest.approx(0.02) and change.a_beats_b  # the shared noise cancels in the pairs
    with pytest.raises(ValueError, match="no gap"):
        kd_scaling.gap_shrinkage(pd.DataFrame(rows), "DKD", [((0.1, "none", 100), (1.0, "none", 100))])
