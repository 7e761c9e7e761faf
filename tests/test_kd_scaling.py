import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from kdlib.claims import kd_scaling as claims
from kdlib.experiments import kd_scaling
from kdlib.models.vision import FlipCrop, MixupCutmix, mixup_cutmix
from kdlib.results import Estimate, to_frame
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


def _teacher(n_train: int = 800) -> Teacher:
    return Teacher("t", "k", nn.Identity(), None, tuple("abcdefghij"), np.arange(n_train), np.arange(n_train, 1000), 0.0, 0.0, 0.0)


def test_fractions_are_nested_class_balanced_prefixes_of_the_replicates_pool():
    labels = np.arange(1000) % 10
    teacher = _teacher()
    small, middle, full = (kd_scaling.nested_subset(teacher, labels, 500, f, seed=3) for f in (0.1, 0.3, 1.0))
    assert (len(small), len(middle), len(full)) == (50, 150, 500)
    assert np.array_equal(middle[:50], small) and np.array_equal(full[:150], middle)  # more data contains less
    assert set(full) <= set(range(800)) and len(set(full)) == 500
    for subset in (small, middle, full):
        assert np.bincount(labels[subset], minlength=10).tolist() == [len(subset) // 10] * 10
    assert not np.array_equal(full, kd_scaling.nested_subset(teacher, labels, 500, 1.0, seed=4))  # a replicate redraws the pool
    with pytest.raises(ValueError, match="exceeds"):
        kd_scaling.nested_subset(teacher, labels, 900, 1.0, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        kd_scaling.nested_subset(teacher, labels, 500, 0.0, seed=0)


def _settings(**changes):
    base = dict(datasets=("fashion_mnist",), pool=1000, fractions=(0.1, 0.3, 1.0), recipes=("none", "strong"), epochs=(40, 20, 16),
                replicates=2, schedule_check=(("none", 8), ("strong", 32)), teachers="quick")
    return kd_scaling.ScalingSettings(**{**base, **changes})


def test_settings_count_epochs_per_fraction_and_check_their_numbers():
    chosen = _settings()
    assert [chosen.steps(f) for f in chosen.fractions] == [2 * 40, 5 * 20, 16 * 16]  # batches of 64: 100, 300, 1000 images
    full = kd_scaling.settings("full", 5)
    assert [full.steps(f) for f in full.fractions] == [300, 834, 2048]  # 50 images for 300 epochs, 150 for 278, 500 for 256
    assert full.pilot_regime()["epochs"] == (40, 16) and chosen.pilot_regime() == {"pool": 1000, "epochs": (40, 16), "schedule": chosen.schedule_check}
    # each check pairs the grid's schedule with its second one, shorter or longer
    assert chosen.schedule_pair("none") == (8, 16) and chosen.schedule_pair("strong") == (16, 32)
    assert full.schedule_pair("none") == (128, 256) and full.schedule_pair("strong") == (256, 512)
    assert full.schedule_pair("strong", full.pilot_regime()) == (16, 32) and full.schedule_pair("none", full.pilot_regime()) == (8, 16)
    assert full.schedule_pairs() == {"none": (128, 256), "strong": (256, 512)} and full.schedule_pairs(full.pilot_regime()) == {"none": (8, 16), "strong": (16, 32)}
    with pytest.raises(ValueError, match="no schedule check for recipe"):
        _settings(schedule_check=(("none", 8),)).schedule_pair("strong")
    assert kd_scaling.settings("quick", 7).replicates == 2 and kd_scaling.settings("full", 7).replicates == 7
    with pytest.raises(ValueError, match="more data must mean more steps"):
        _settings(epochs=(40, 10, 2))
    with pytest.raises(ValueError, match="increase to 1"):
        _settings(fractions=(0.1, 0.5), epochs=(4, 2))
    with pytest.raises(ValueError, match="one positive epoch count per fraction"):
        _settings(epochs=(40, 20))
    for bad in ((("none", 16),), (("none", 8), ("none", 32)), (("flip-crop", 8),), (("none", 0),)):
        with pytest.raises(ValueError, match="schedule check needs"):
            _settings(schedule_check=bad)
    with pytest.raises(ValueError, match="recipes from"):
        _settings(recipes=("none", "autoaugment"))
    with pytest.raises(ValueError, match="not on the data axis"):
        chosen.epochs_at(0.5)
    with pytest.raises(ValueError, match="profile"):
        kd_scaling.settings("fast", 3)


def test_curve_steps_and_transforms():
    assert kd_scaling.curve_steps(80) == [20, 40, 60, 80]
    assert kd_scaling.curve_steps(3) == [1, 2, 3]  # shares that round to the same step collapse
    with pytest.raises(ValueError, match="planned"):
        kd_scaling.curve_steps(0)
    assert kd_scaling.transforms_for("none", 1, 10) == []
    assert [type(t) for t in kd_scaling.transforms_for("flip-crop", 1, 10)] == [FlipCrop]
    assert [type(t) for t in kd_scaling.transforms_for("strong", 3, 10)] == [FlipCrop, MixupCutmix]
    with pytest.raises(ValueError, match="unknown recipe"):
        kd_scaling.transforms_for("randaugment", 1, 10)
    with pytest.raises(ValueError, match="methods must be one of"):
        kd_scaling.train_cell("fashion_mnist", 100, 1.0, "none", 1, "everything", "quick", None, 0)


def test_grid_cells_and_pilot_cells():
    chosen = _settings(recipes=("none", "flip-crop", "strong"))
    grid = kd_scaling.cells(chosen, range(2))
    assert len(grid) == 3 * 3 * 2 and {c["methods"] for c in grid} == {"all"}
    assert {(c["fraction"], c["epochs"]) for c in grid} == {(0.1, 40), (0.3, 20), (1.0, 16)}
    schedule = kd_scaling.schedule_cells(chosen, [0])
    assert {(c["recipe"], c["epochs"], c["fraction"], c["methods"]) for c in schedule} == {("none", 8, 1.0, "CE only"), ("strong", 32, 1.0, "CE only")}
    pilot = kd_scaling.pilot_cells(chosen)
    assert {c["seed"] for c in pilot} == set(kd_scaling.PILOT_SEEDS)
    assert {(c["fraction"], c["recipe"], c["epochs"]) for c in pilot if c["methods"] == "all"} == {
        (f, r, e) for f, e in ((0.1, 40), (1.0, 16)) for r in ("none", "strong")}
    assert {(c["recipe"], c["epochs"]) for c in pilot if c["methods"] == "CE only"} == {("none", 8), ("strong", 32)}
    cheaper = kd_scaling.pilot_cells(_settings(pilot={"pool": 600, "epochs": (5, 2), "schedule": (("none", 1),)}))
    assert {(c["pool"], c["fraction"], c["epochs"]) for c in cheaper} == {(600, 0.1, 5), (600, 1.0, 2), (600, 1.0, 1)}


def _frame(test_accuracy: dict, schedule: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A grid frame from {(fraction, recipe, seed, method): accuracy} (epochs 16 at 100 %, else 40)."""
    rows = [{"dataset": "fashion_mnist", "fraction": f, "recipe": r, "seed": s, "method": m, "set": "test", "accuracy": a,
             "epochs": 16 if f == 1.0 else 40, "methods": "all", "step": 10, "seconds": 1.0} for (f, r, s, m), a in test_accuracy.items()]
    sched = [{"dataset": "fashion_mnist", "fraction": 1.0, "recipe": r, "seed": s, "method": "CE only", "set": "test", "accuracy": a,
              "epochs": e, "methods": "CE only", "step": 5, "seconds": 0.5} for (r, e, s), a in (schedule or {}).items()]
    return pd.DataFrame(rows), pd.DataFrame(sched)


def test_gaps_and_records_pair_within_point_and_replicate():
    accuracy = {}
    for seed, (kd, dist, ce) in enumerate([(0.80, 0.82, 0.75), (0.70, 0.69, 0.71)]):
        accuracy.update({(0.1, "none", seed, "vanilla KD"): kd, (0.1, "none", seed, "DIST"): dist, (0.1, "none", seed, "CE only"): ce})
    frame, _ = _frame(accuracy)
    gaps = kd_scaling.gaps(frame)
    dist = gaps[gaps.method == "DIST"].sort_values("seed")
    np.testing.assert_allclose(dist.gap, [2.0, -1.0])
    assert set(dist.point) == {"fashion_mnist 10% none"}
    with pytest.raises(ValueError, match="vanilla KD"):
        kd_scaling.gaps(frame[frame.method != "vanilla KD"])


def _claims_grid() -> tuple[pd.DataFrame, pd.DataFrame]:
    """DIST's gap is 3 pp at 10 % and 1 pp at 100 % plus a per-seed offset; CE only gains 0.5 pp from the strong recipe."""
    accuracy, schedule = {}, {}
    for seed, noise in enumerate([0.0, 0.004, -0.004]):
        for fraction, gap in ((0.1, 0.03), (1.0, 0.01)):
            for recipe, shift in (("none", 0.0), ("strong", 0.005)):
                kd = 0.7 + fraction / 10 + noise
                accuracy.update({(fraction, recipe, seed, "vanilla KD"): kd, (fraction, recipe, seed, "DIST"): kd + gap + noise,
                                 (fraction, recipe, seed, "DKD"): kd, (fraction, recipe, seed, "CE only"): 0.7 + shift + noise})
        schedule[("none", 8, seed)] = 0.7 + noise - 0.002  # half the grid's 16 epochs
        schedule[("strong", 32, seed)] = 0.7 + 0.005 + noise + 0.003  # double
    return _frame(accuracy, schedule)


def test_evidence_by_hand():
    frame, schedule = _claims_grid()
    records = to_frame(kd_scaling.to_records(frame, schedule))
    assert set(records.experiment) >= {"schedule: fashion_mnist 100% none", "fashion_mnist 100% strong"}
    runs = kd_scaling.schedule_runs(frame, schedule)  # the check's cells plus the grid's own CE-only students at 100 %
    assert len(runs) == 2 * 2 * 3 and set(runs.method) == {"CE only"} and set(runs.epochs) == {8, 16, 32}
    evidence = claims.evidence(records, (0.1, 1.0), ("none", "strong"), {"none": (8, 16), "strong": (16, 32)})
    corner = evidence["dist-beats-kd-small-weak"]["fashion_mnist 10% none"]
    assert corner.mean == pytest.approx(3.0) and corner.n == 3 and corner.spread == pytest.approx(0.4)
    shrink = evidence["dist-gap-shrinks-with-data"]
    assert set(shrink) == {"fashion_mnist none", "fashion_mnist strong"}
    assert all(e.mean == pytest.approx(2.0) and e.spread == pytest.approx(0.0, abs=1e-9) for e in shrink.values())  # the noise cancels
    assert all(e.mean == pytest.approx(0.0, abs=1e-9) for e in evidence["dkd-gap-shrinks-with-recipe"].values())
    assert evidence["strong-recipe-does-not-hurt-ce"]["fashion_mnist 100%"].mean == pytest.approx(0.5)
    # the shorter schedule minus the longer, paired: half (8 epochs) vs the grid's 16 is 0.2 pp short; 16 vs double (32) 0.3 pp
    assert evidence["ce-plateau-none"]["schedule: fashion_mnist 100% none"].mean == pytest.approx(-0.2)
    assert evidence["ce-plateau-strong"]["schedule: fashion_mnist 100% strong"].mean == pytest.approx(-0.3)
    assert set(evidence) == {c.id for c in claims.DECLARATIONS.claims if c.graded and c.test != "deterministic"}


def test_pooled_spread_and_plans_follow_the_power_rule():
    estimates = {"a": Estimate.paired([1.0, 2.0, 3.0]), "b": Estimate.paired([0.0, 0.0, 3.0])}
    spread, n = claims.pooled_spread(estimates)
    assert spread == pytest.approx(round(np.sqrt((1.0 + 3.0) / 2), 2)) and n == 5
    for claim_id, (sd, n_pilot) in claims.PILOT.items():
        declared = claims.DECLARATIONS[claim_id]
        assert declared.plan == claims.plan(claim_id, sd, n_pilot) and declared.replicates <= claims.CAP
    assert claims.DECLARATIONS["dkd-beats-kd-small-weak"].resolved_sesoi == pytest.approx(0.38)
    assert claims.DECLARATIONS["dist-gap-shrinks-with-data"].resolved_sesoi == pytest.approx(0.5)
    assert claims.DECLARATIONS["dkd-gap-shrinks-with-data"].resolved_sesoi == pytest.approx(0.375)
    assert claims.DECLARATIONS["gap-vanishes-at-imagenet-scale"].out_of_scope


def test_step_costs_table():
    frame, schedule = _claims_grid()
    costs = kd_scaling.step_costs(pd.concat([frame, schedule]))
    assert costs.loc[("all", "none"), "ms_per_step"] == pytest.approx(100.0)
    assert costs.loc[("CE only", "strong"), "cells"] == 3


def test_late_gain_is_the_last_quarter_of_each_curve():
    rows = [{"dataset": "d", "fraction": 0.1, "recipe": "none", "method": "DIST", "seed": s, "set": "val", "step": step, "accuracy": a}
            for s, curve in enumerate([(0.5, 0.70, 0.71), (0.4, 0.60, 0.63)]) for step, a in zip((10, 20, 30), curve)]
    gain = kd_scaling.late_gain(pd.DataFrame(rows)).loc[("d", 0.1, "none", "DIST")]
    assert gain["mean"] == pytest.approx(2.0) and gain["max"] == pytest.approx(3.0)
