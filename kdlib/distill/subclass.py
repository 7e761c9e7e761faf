"""Students with a subclass head (C classes x S slots) and the subclass targets they are trained on.

The head's class score is ``logsumexp_s`` of the class's S logits, so a class's probability is the sum of its
subclass probabilities (as in Subclass Distillation, Mueller et al. 2020). Targets are (N, C, S) distributions
whose slot sums are the teacher's class probabilities; the methods differ only in how a class's probability
is split over its slots:

* :func:`subclass_targets`: softmax of per-slot scores at temperature beta (LELP, random projections;
  ``beta = inf`` is the uniform split);
* :func:`assignment_targets`: all of p_c on one slot (k-means pseudo-subclasses, oracle subclasses).

:func:`split_entropy` measures how sharp a split is (0: one slot, 1: uniform).
"""

from __future__ import annotations

import math

import torch

from kdlib.distill.registry import register_objective
from kdlib.train import Batch


def check_class_probs(class_probs: torch.Tensor) -> None:
    """Raise unless ``class_probs`` is an (N, C) matrix of distributions."""
    if class_probs.ndim != 2:
        raise ValueError(f"class probabilities must be (N, C), got shape {tuple(class_probs.shape)}")
    if (class_probs < 0).any() or not torch.allclose(class_probs.sum(1), torch.ones(len(class_probs)), atol=1e-4):
        raise ValueError("class probabilities must be non-negative and sum to 1 per example")


def subclass_targets(class_probs: torch.Tensor, scores: torch.Tensor, beta: float) -> torch.Tensor:
    """``p_c * softmax_s(scores_cs / beta)``, shape (N, C, S); ``beta = inf`` splits p_c uniformly."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (inf for the uniform split), got {beta}")
    if scores.ndim != 3 or scores.shape[:2] != class_probs.shape:
        raise ValueError(f"scores must be (N, C, S) with (N, C) = {tuple(class_probs.shape)}, got {tuple(scores.shape)}")
    split = torch.full_like(scores, 1.0 / scores.shape[2]) if math.isinf(beta) else torch.softmax(scores / beta, dim=2)
    return class_probs[:, :, None] * split


def assignment_targets(class_probs: torch.Tensor, assignment: torch.Tensor, num_subclasses: int) -> torch.Tensor:
    """Put all of p_c on slot ``assignment[n, c]``: (N, C, S) targets for hard pseudo-subclasses."""
    if assignment.shape != class_probs.shape:
        raise ValueError(f"assignment must be (N, C) = {tuple(class_probs.shape)}, got {tuple(assignment.shape)}")
    if assignment.min() < 0 or assignment.max() >= num_subclasses:
        raise ValueError(f"assignments must lie in [0, {num_subclasses}), got range [{assignment.min()}, {assignment.max()}]")
    onehot = torch.nn.functional.one_hot(assignment.long(), num_subclasses).to(class_probs.dtype)
    return class_probs[:, :, None] * onehot


def split_entropy(targets: torch.Tensor) -> float:
    """The mean normalised entropy of the within-class split of (N, C, S) targets: ``sum_c p_c H(t_c / p_c) / log S``
    averaged over examples (0: all of a class's mass on one slot, 1: the uniform split)."""
    if targets.ndim != 3 or targets.shape[2] < 2:
        raise ValueError(f"need (N, C, S) targets with S >= 2, got shape {tuple(targets.shape)}")
    mass = targets.sum(2, keepdim=True)
    split = targets / mass.clamp_min(1e-12)
    entropy = -(split * split.clamp_min(1e-12).log()).sum(2)  # (N, C)
    return float((mass[..., 0] * entropy).sum(1).mean() / math.log(targets.shape[2]))


def kmeans(points: torch.Tensor, k: int, seed: int, iterations: int = 50) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns the (k, D) centroids."""
    if k < 1 or len(points) < k:
        raise ValueError(f"k-means needs 1 <= k <= {len(points)} points, got k = {k}")
    generator = torch.Generator().manual_seed(seed)
    centroids = points[torch.randint(len(points), (1,), generator=generator)]
    for _ in range(1, k):
        d2 = torch.cdist(points, centroids).min(1).values ** 2
        pick = torch.multinomial(d2, 1, generator=generator) if d2.sum() > 0 else torch.randint(len(points), (1,), generator=generator)
        centroids = torch.cat([centroids, points[pick]])
    for _ in range(iterations):
        nearest = torch.cdist(points, centroids).argmin(1)
        updated = torch.stack([points[nearest == j].mean(0) if (nearest == j).any() else centroids[j] for j in range(k)])
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    return centroids


def nearest_centroid(embeddings: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """For every example and class, the index of the class's nearest centroid: (N, D), (C, S, D) -> (N, C)."""
    return torch.stack([torch.cdist(embeddings, class_centroids).argmin(1) for class_centroids in centroids], dim=1)


def class_centroids(embeddings: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, num_classes: int, num_subclasses: int) -> torch.Tensor:
    """Mean embedding of every (class, group) pair: (C, S, D); ``groups`` in [0, S) indexes subclasses within a class."""
    centroids = torch.zeros(num_classes, num_subclasses, embeddings.shape[1], dtype=embeddings.dtype)
    for c in range(num_classes):
        for s in range(num_subclasses):
            members = embeddings[(labels == c) & (groups == s)]
            if len(members) == 0:
                raise ValueError(f"class {c} has no fitting example in subclass {s}")
            centroids[c, s] = members.mean(0)
    return centroids


def kmeans_centroids(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, num_subclasses: int, seed: int) -> torch.Tensor:
    """k-means with k = S inside every class of the fitting set: (C, S, D) centroids."""
    return torch.stack([kmeans(embeddings[labels == c], num_subclasses, seed + c) for c in range(num_classes)])


def class_scores(subclass_logits: torch.Tensor) -> torch.Tensor:
    """Class scores of a subclass head, (..., C, S) -> (..., C): logsumexp over each class's slots.

    ``softmax(class_scores)`` is the sum of each class's subclass probabilities under the softmax over all C*S logits.
    """
    return torch.logsumexp(subclass_logits, dim=-1)


def _slots(outputs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, C * S_max) outputs as (B, C, S_max) log-probabilities under the softmax over all C * S_max outputs."""
    if outputs.shape[1] % num_classes:
        raise ValueError(f"{outputs.shape[1]} outputs are not C x S slots for C = {num_classes}")
    return torch.log_softmax(outputs, dim=1).unflatten(1, (num_classes, -1))


@register_objective("subclass_targets")
class SubclassTargets:
    """One cross-entropy between (N, C, S) subclass targets and the softmax over the student's C * S_max outputs
    (the student's first S slots of every class; its other slots are masked and get no target mass)."""

    def __init__(self, targets: torch.Tensor) -> None:
        if targets.ndim != 3:
            raise ValueError(f"subclass targets must be (N, C, S), got shape {tuple(targets.shape)}")
        self.targets = targets.float()

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets = self.targets.to(outputs.device)[batch.index]
        log_probs = _slots(outputs, targets.shape[1])
        if log_probs.shape[2] < targets.shape[2]:
            raise ValueError(f"the student has {log_probs.shape[2]} slots per class but the targets {targets.shape[2]}")
        return -(targets * log_probs[:, :, : targets.shape[2]]).sum((1, 2))


@register_objective("class_targets")
class ClassTargets:
    """Cross-entropy between (N, C) class targets and the student's class probabilities, where a class's probability
    is the sum of its slots' (one slot per class: the ordinary softmax; S slots: head-matched KD)."""

    def __init__(self, targets: torch.Tensor) -> None:
        if targets.ndim != 2:
            raise ValueError(f"class targets must be (N, C), got shape {tuple(targets.shape)}")
        self.targets = targets.float()

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets = self.targets.to(outputs.device)[batch.index]
        return -(targets * torch.logsumexp(_slots(outputs, targets.shape[1]), dim=2)).sum(1)


@register_objective("uniform_split")
def uniform_split(teacher_logits: torch.Tensor, subclasses: int, temperature: float = 1.0) -> SubclassTargets:
    """The teacher's class probability p_c spread evenly over the S slots (beta = infinity)."""
    probs = torch.softmax(teacher_logits.float() / temperature, dim=1)
    return SubclassTargets(subclass_targets(probs, torch.zeros(*probs.shape, subclasses), math.inf))


@register_objective("kmeans_subclasses")
def kmeans_subclasses(teacher_logits: torch.Tensor, embeddings: torch.Tensor, fit_embeddings: torch.Tensor, fit_labels: torch.Tensor,
                      subclasses: int, temperature: float = 1.0, seed: int = 0) -> SubclassTargets:
    """All of p_c on the nearest of S k-means centroids of class c (fitted on the teacher's fitting embeddings)."""
    probs = torch.softmax(teacher_logits.float() / temperature, dim=1)
    centroids = kmeans_centroids(fit_embeddings, fit_labels, probs.shape[1], subclasses, seed)
    return SubclassTargets(assignment_targets(probs, nearest_centroid(embeddings, centroids), subclasses))


@register_objective("oracle_subclasses")
def oracle_subclasses(teacher_logits: torch.Tensor, embeddings: torch.Tensor, labels: torch.Tensor, fine: torch.Tensor,
                      fit_embeddings: torch.Tensor, fit_labels: torch.Tensor, fit_fine: torch.Tensor, subclasses: int,
                      temperature: float = 1.0) -> SubclassTargets:
    """The true subclass (``fine``, its index within the class) for an example's own class; for every other class the
    nearest true-subclass centroid; each class's slot gets p_c."""
    probs = torch.softmax(teacher_logits.float() / temperature, dim=1)
    centroids = class_centroids(fit_embeddings, fit_labels, fit_fine, probs.shape[1], subclasses)
    assignment = nearest_centroid(embeddings, centroids)
    assignment[torch.arange(len(assignment)), labels] = fine
    return SubclassTargets(assignment_targets(probs, assignment, subclasses))


@register_objective("oracle_uniform_other")
def oracle_uniform_other(teacher_logits: torch.Tensor, labels: torch.Tensor, fine: torch.Tensor, subclasses: int,
                         temperature: float = 1.0) -> SubclassTargets:
    """The true subclass (``fine``, its index within the class) gets the own class's p_c; every other class's p_c is
    spread evenly over its S slots (a clustering of each class's own examples says nothing about the others)."""
    probs = torch.softmax(teacher_logits.float() / temperature, dim=1)
    if labels.shape != probs.shape[:1] or fine.shape != labels.shape:
        raise ValueError(f"labels and fine must be (N,) = ({len(probs)},), got {tuple(labels.shape)} and {tuple(fine.shape)}")
    if fine.min() < 0 or fine.max() >= subclasses:
        raise ValueError(f"fine labels must lie in [0, {subclasses}), got range [{fine.min()}, {fine.max()}]")
    split = torch.full((*probs.shape, subclasses), 1.0 / subclasses)
    rows = torch.arange(len(labels))
    split[rows, labels] = torch.nn.functional.one_hot(fine.long(), subclasses).float()
    return SubclassTargets(probs[:, :, None] * split)
