import math

import pytest
import torch

from kdlib.distill.lelp import fit_projection, lelp_targets, null_space_projector
from kdlib.distill.subclass import (
    assignment_targets,
    class_centroids,
    class_scores,
    kmeans,
    kmeans_centroids,
    nearest_centroid,
    subclass_targets,
)


def _toy(n=300, dim=12, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=g)
    labels = torch.arange(n) % classes
    head = torch.randn(classes, dim, generator=g)
    logits = embeddings @ head.T
    return embeddings, labels, head, logits


def test_null_space_projector_is_orthogonal_to_head_rows_and_idempotent():
    _, _, head, _ = _toy()
    p = null_space_projector(head)
    assert torch.allclose(head.double() @ p, torch.zeros(2, 12, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(p @ p, p, atol=1e-10)
    assert torch.linalg.matrix_rank(p) == 12 - 2


def test_projection_directions_are_orthonormal_and_orthogonal_to_head():
    embeddings, labels, head, _ = _toy()
    for kind in ("pca", "random"):
        proj = fit_projection(embeddings, labels, head, 4, directions=kind, seed=1)
        for c in range(2):
            u = proj.directions[c]
            assert torch.allclose(u.T @ u, torch.eye(4, dtype=torch.float64), atol=1e-8)
            assert torch.allclose(head.double() @ u, torch.zeros(2, 4, dtype=torch.float64), atol=1e-8)


def test_pca_directions_span_the_top_principal_subspace():
    # class 0 varies strongly along e_3 and e_5 (both outside the head's row space): PCA with S=2 must find them
    g = torch.Generator().manual_seed(0)
    n, dim = 400, 8
    embeddings = 0.05 * torch.randn(n, dim, generator=g)
    embeddings[:, 3] += 3 * torch.randn(n, generator=g)
    embeddings[:, 5] += 2 * torch.randn(n, generator=g)
    labels = torch.zeros(n, dtype=torch.long)
    labels[::2] = 1
    head = torch.zeros(2, dim)
    head[0, 0], head[1, 1] = 1.0, 1.0
    proj = fit_projection(embeddings, labels, head, 2)
    u = proj.directions[0]
    span = u @ u.T  # projector onto the found subspace
    expected = torch.zeros(dim, dim, dtype=torch.float64)
    expected[3, 3] = expected[5, 5] = 1.0
    assert torch.allclose(span, expected, atol=0.05)


def test_lelp_targets_sum_to_teacher_class_probabilities():
    embeddings, labels, head, logits = _toy()
    proj = fit_projection(embeddings, labels, head, 5)
    targets = lelp_targets(logits, embeddings, proj, temperature=2.0, beta=0.5)
    assert targets.shape == (300, 2, 5)
    assert torch.allclose(targets.sum(2), torch.softmax(logits / 2.0, 1), atol=1e-6)
    assert torch.allclose(targets.sum((1, 2)), torch.ones(300), atol=1e-6)


def test_lelp_with_one_subclass_is_vanilla_kd_targets():
    embeddings, labels, head, logits = _toy()
    proj = fit_projection(embeddings, labels, head, 1)
    targets = lelp_targets(logits, embeddings, proj, temperature=4.0, beta=1.0)
    assert torch.allclose(targets[:, :, 0], torch.softmax(logits / 4.0, 1), atol=1e-6)


def test_scores_are_in_rms_units_on_the_fitting_class():
    embeddings, labels, head, _ = _toy()
    proj = fit_projection(embeddings, labels, head, 3)
    z = proj.scores(embeddings)
    for c in range(2):
        assert z[labels == c, c].pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=1e-4)


def test_subclass_targets_closed_form_and_uniform_limit():
    probs = torch.tensor([[0.25, 0.75]])
    scores = torch.tensor([[[0.0, math.log(3.0)], [1.0, 1.0]]])
    targets = subclass_targets(probs, scores, beta=1.0)
    assert torch.allclose(targets, torch.tensor([[[0.0625, 0.1875], [0.375, 0.375]]]))
    uniform = subclass_targets(probs, scores, beta=math.inf)
    assert torch.allclose(uniform, torch.tensor([[[0.125, 0.125], [0.375, 0.375]]]))


def test_class_scores_recover_class_predictions_and_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 3, 4, generator=g)
    class_probs = torch.softmax(logits.flatten(1), 1).view(50, 3, 4).sum(2)
    assert torch.allclose(torch.softmax(class_scores(logits), 1), class_probs, atol=1e-6)
    assert torch.equal(class_scores(logits).argmax(1), class_probs.argmax(1))
    # with one slot per class the head is an ordinary classifier
    assert torch.equal(class_scores(logits[:, :, :1]), logits[:, :, 0])


def test_assignment_targets_put_class_mass_on_one_slot():
    probs = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    assignment = torch.tensor([[1, 0], [2, 2]])
    targets = assignment_targets(probs, assignment, 3)
    assert torch.allclose(targets.sum(2), probs)
    assert targets[0, 0, 1] == pytest.approx(0.2) and targets[0, 1, 0] == pytest.approx(0.8) and targets[1, 0, 2] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="assignments must lie"):
        assignment_targets(probs, assignment, 2)


def test_kmeans_separates_well_separated_blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(30, 2, generator=g) for c in centres])
    found = kmeans(points, 3, seed=0)
    assert torch.cdist(found, centres).min(1).values.max() < 0.2


def test_centroids_and_nearest_assignment():
    embeddings = torch.tensor([[0.0, 0.0], [0.2, 0.0], [5.0, 5.0], [5.2, 5.0]])
    labels = torch.tensor([0, 0, 0, 0])
    groups = torch.tensor([0, 0, 1, 1])
    centroids = class_centroids(embeddings, labels, groups, num_classes=1, num_subclasses=2)
    assert torch.allclose(centroids[0], torch.tensor([[0.1, 0.0], [5.1, 5.0]]))
    assert torch.equal(nearest_centroid(embeddings, centroids)[:, 0], groups)
    assert kmeans_centroids(embeddings, labels, 1, 2, seed=0).shape == (1, 2, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_subclasses=0), "num_subclasses"),
        (dict(num_subclasses=20), "exceeds the embedding dimension"),
        (dict(num_subclasses=2, directions="ica"), "directions"),
    ],
)
def test_fit_projection_rejects_bad_parameters(kwargs, message):
    embeddings, labels, head, _ = _toy()
    with pytest.raises(ValueError, match=message):
        fit_projection(embeddings, labels, head, **kwargs)


def test_bad_beta_and_temperature_raise():
    embeddings, labels, head, logits = _toy()
    proj = fit_projection(embeddings, labels, head, 2)
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            lelp_targets(logits, embeddings, proj, temperature=1.0, beta=beta)
    with pytest.raises(ValueError, match="temperature"):
        lelp_targets(logits, embeddings, proj, temperature=0.0, beta=1.0)
    with pytest.raises(ValueError, match="embeddings must be"):
        proj.scores(embeddings[:, :5])


def test_fit_projection_needs_examples_of_every_class():
    embeddings, labels, head, _ = _toy()
    with pytest.raises(ValueError, match="class 1 has 0"):
        fit_projection(embeddings, torch.zeros_like(labels), head, 2)


def test_split_entropy_is_zero_for_one_slot_and_one_for_the_uniform_split():
    from kdlib.distill.subclass import split_entropy

    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    onehot = probs[:, :, None] * torch.tensor([1.0, 0.0, 0.0])
    uniform = probs[:, :, None].expand(-1, -1, 3) / 3
    assert split_entropy(onehot) == pytest.approx(0.0, abs=1e-6) and split_entropy(uniform) == pytest.approx(1.0)
    half = probs[:, :, None] * torch.tensor([0.5, 0.5, 0.0])  # log 2 / log 3 on every class
    assert split_entropy(half) == pytest.approx(math.log(2) / math.log(3))
    with pytest.raises(ValueError, match="S >= 2"):
        split_entropy(probs[:, :, None])


def test_oracle_uniform_other_targets_by_hand():
    from kdlib.distill import get_objective

    logits = torch.log(torch.tensor([[0.6, 0.4], [0.1, 0.9]]))
    targets = get_objective("oracle_uniform_other", teacher_logits=logits, labels=torch.tensor([0, 1]), fine=torch.tensor([2, 0]), subclasses=3).targets
    assert torch.allclose(targets[0], torch.tensor([[0.0, 0.0, 0.6], [0.4 / 3] * 3]), atol=1e-6)
    assert torch.allclose(targets[1], torch.tensor([[0.1 / 3] * 3, [0.9, 0.0, 0.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="fine labels must lie"):
        get_objective("oracle_uniform_other", teacher_logits=logits, labels=torch.tensor([0, 1]), fine=torch.tensor([3, 0]), subclasses=3)
