"""Golden values for every registered objective on one fixed tiny batch (tests/fixtures/objectives.json).

The fixture holds the batch (outputs, labels with an unlabelled example, teacher logits, per-example data) and every
objective's per-example losses, computed once with one thread and committed. A new objective must add a builder
here and its values to the fixture (``KDLIB_WRITE_GOLDEN=1 pytest tests/test_golden_objectives.py`` rewrites it);
a changed formula fails until the fixture is deliberately rewritten. DKD and DIST are also checked against the
formulas of their official repositories (megvii-research/mdistiller, hunto/DIST_KD), re-derived below.
"""

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kdlib.distill import available_objectives, get_objective
from kdlib.models.loss_network import LossNetwork
from kdlib.train import Batch

FIXTURE = Path(__file__).parent / "fixtures" / "objectives.json"


def _inputs() -> dict:
    """The tiny batch: B = 4, C = 3, S = 2 subclass slots, D = 4 embedding dimensions, 12 fitting examples."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.round(torch.randn(*shape, generator=g), decimals=3)  # noqa: E731  (short literals in the file)
    fit_labels = torch.tensor([0, 1, 2] * 4)
    return {
        "outputs": r(4, 3), "subclass_outputs": r(4, 6), "labels": torch.tensor([0, 2, -1, 1]), "teacher": r(4, 3) * 2,
        "embeddings": r(4, 4), "fit_embeddings": r(12, 4), "fit_labels": fit_labels, "fit_fine": torch.tensor([0] * 6 + [1] * 6),
        "head_weight": r(3, 4), "weights": torch.tensor([1.0, 1.0, 0.25, 0.0]), "alpha": torch.tensor([1.0, 1.0, 0.7, 0.9]),
        "teacher_error": torch.tensor([0.0, 0.0, 0.3, 0.1]), "fine": torch.tensor([1, 0, 1, 0]),
    }


def _builders(x: dict) -> dict:
    """name -> (objective, the outputs it reads) for every registered objective."""
    probs = F.softmax(x["teacher"], 1)
    mask = (probs.argsort(1, descending=True).argsort(1) < 2).float()
    subclass = {"teacher_logits": x["teacher"], "embeddings": x["embeddings"], "fit_embeddings": x["fit_embeddings"], "fit_labels": x["fit_labels"]}
    return {
        "ce": (get_objective("ce"), "outputs"),
        "kd": (get_objective("kd", temperature=2.0, alpha=0.7), "outputs"),
        "kd_sum": (get_objective("kd_sum"), "outputs"),
        "dkd": (get_objective("dkd", alpha=1.0, beta=2.0, temperature=2.0), "outputs"),
        "dist": (get_objective("dist", temperature=2.0), "outputs"),
        "hard_distillation": (get_objective("hard_distillation"), "outputs"),
        "soft_distillation": (get_objective("soft_distillation"), "outputs"),
        "confidence_threshold": (get_objective("confidence_threshold", threshold=0.6), "outputs"),
        "weighted_distillation": (get_objective("weighted_distillation", weights=x["weights"], target="hard", normalise=True), "outputs"),
        "distortion_weighted_distillation": (get_objective("distortion_weighted_distillation", teacher_error=x["teacher_error"]), "outputs"),
        "expected_clean_loss": (get_objective("expected_clean_loss", teacher_error=x["teacher_error"], target="hard"), "outputs"),
        "slam": (get_objective("slam", alpha=x["alpha"], mask=mask), "outputs"),
        "target_distillation": (get_objective("target_distillation", targets=torch.roll(probs, 1, dims=1)), "outputs"),
        "class_targets": (get_objective("class_targets", targets=probs), "subclass_outputs"),
        "subclass_targets": (get_objective("subclass_targets", targets=probs[:, :, None] * torch.tensor([0.25, 0.75])), "subclass_outputs"),
        "uniform_split": (get_objective("uniform_split", teacher_logits=x["teacher"], subclasses=2), "subclass_outputs"),
        "lelp": (get_objective("lelp", **subclass, head_weight=x["head_weight"], subclasses=2, beta=0.5, seed=0), "subclass_outputs"),
        "kmeans_subclasses": (get_objective("kmeans_subclasses", **subclass, subclasses=2, seed=0), "subclass_outputs"),
        "oracle_subclasses": (get_objective("oracle_subclasses", **subclass, labels=torch.tensor([0, 2, 1, 1]), fine=x["fine"], fit_fine=x["fit_fine"],
                                            subclasses=2), "subclass_outputs"),
        "oracle_uniform_other": (get_objective("oracle_uniform_other", teacher_logits=x["teacher"], labels=torch.tensor([0, 2, 1, 1]),
                                               fine=x["fine"], subclasses=2), "subclass_outputs"),
        "loss_network": (get_objective("loss_network", network=LossNetwork(seed=0)), "outputs"),
        "kdzero": (get_objective("kdzero", transforms=["softmax", "sqrt"], distance="pearson_intra", weight=5.0), "outputs"),
    }


def _losses() -> dict[str, list[float]]:
    torch.set_num_threads(1)
    x = _inputs()
    batch = Batch(torch.arange(4), x["labels"], x["teacher"], {}, 0)
    return {name: objective(x[outputs], batch).tolist() for name, (objective, outputs) in _builders(x).items()}


def test_every_registered_objective_matches_its_golden_values():
    losses = _losses()
    assert set(losses) == set(available_objectives()), "every registered objective needs a builder here and a golden value"
    if os.environ.get("KDLIB_WRITE_GOLDEN"):
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps({k: [round(v, 7) for v in vals] for k, vals in sorted(losses.items())}, indent=1) + "\n")
    golden = json.loads(FIXTURE.read_text())
    assert set(golden) == set(losses)
    for name, values in losses.items():
        assert values == pytest.approx(golden[name], abs=2e-6), name


def test_golden_values_are_per_example_and_finite():
    for name, values in _losses().items():
        assert len(values) == 4 and all(v == v and abs(v) < 1e6 for v in values), name


def _official_dkd(logits_student, logits_teacher, target, alpha, beta, temperature):
    """mdistiller's dkd_loss (distillers/DKD.py), re-derived: binary KL of the target-class probability, and KL of the
    non-target classes with the target logit pushed down by 1000; both x T^2, averaged over the batch."""
    gt = F.one_hot(target, logits_student.shape[1]).bool()
    ps, pt = F.softmax(logits_student / temperature, 1), F.softmax(logits_teacher / temperature, 1)
    binary = lambda p: torch.stack([(p * gt).sum(1), (p * ~gt).sum(1)], 1)  # noqa: E731
    tckd = (binary(pt) * (binary(pt).log() - binary(ps).log())).sum() * temperature**2 / len(target)
    pt2 = F.softmax(logits_teacher / temperature - 1000.0 * gt, 1)
    log_ps2 = F.log_softmax(logits_student / temperature - 1000.0 * gt, 1)
    nckd = (pt2 * (pt2.clamp_min(1e-30).log() - log_ps2)).sum() * temperature**2 / len(target)
    return alpha * tckd + beta * nckd


def _official_dist(y_s, y_t, beta, gamma):
    """DIST_KD's DIST.forward (losses/dist_kd.py), re-derived: 1 - Pearson correlation of the softmax rows (inter-class)
    and of its columns (intra-class), each averaged."""
    pearson = lambda a, b: F.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True), dim=1, eps=1e-8)  # noqa: E731
    p_s, p_t = y_s.softmax(1), y_t.softmax(1)
    return beta * (1 - pearson(p_s, p_t).mean()) + gamma * (1 - pearson(p_s.T, p_t.T).mean())


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dkd_matches_the_official_formula(temperature):
    g = torch.Generator().manual_seed(1)
    s, t, y = torch.randn(16, 5, generator=g), 2 * torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    ours = get_objective("dkd", alpha=1.0, beta=8.0, temperature=temperature, ce_weight=0.0)(s, Batch(torch.arange(16), y, t, {}, 0)).mean()
    assert ours.item() == pytest.approx(_official_dkd(s, t, y, 1.0, 8.0, temperature).item(), rel=1e-5)


def test_dist_matches_the_official_formula():
    g = torch.Generator().manual_seed(2)
    s, t, y = torch.randn(16, 5, generator=g), 2 * torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    ours = get_objective("dist", beta=1.0, gamma=2.0, ce_weight=0.0)(s, Batch(torch.arange(16), y, t, {}, 0)).mean()
    assert ours.item() == pytest.approx(_official_dist(s, t, 1.0, 2.0).item(), rel=1e-5)
