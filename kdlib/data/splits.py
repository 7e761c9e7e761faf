"""Deterministic labelled / validation / unlabelled / test splits for the semi-supervised papers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SemiSupervisedSplit:
    """Disjoint index arrays into one pool of examples."""

    labelled: np.ndarray
    validation: np.ndarray
    unlabelled: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("labelled", "validation", "unlabelled", "test")}


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order of all indices in which every prefix holds each class in proportion to its size.

    Each class is shuffled, its i-th member gets the key (i + u) / n_c with u ~ U(0, 1); sorting by key
    interleaves the classes evenly.
    """
    keys = np.empty(len(labels))
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(keys, kind="stable")


def semi_supervised_split(
    labels: np.ndarray,
    *,
    n_labelled: int,
    n_validation: int,
    n_unlabelled: int | None = None,
    n_test: int = 0,
    seed: int,
    stratify: bool = True,
) -> SemiSupervisedSplit:
    """Split ``len(labels)`` examples into labelled, validation, unlabelled and (optionally) test indices.

    Args:
        labels: class labels of the pool (used only to stratify).
        n_labelled, n_validation, n_test: sizes of those parts.
        n_unlabelled: size of the unlabelled part; ``None`` takes everything left.
        seed: the split is a pure function of ``(labels, sizes, seed, stratify)``.
        stratify: keep class proportions in every part.

    Raises:
        ValueError: negative sizes, an empty pool, or more examples asked for than the pool holds.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    sizes = {"n_labelled": n_labelled, "n_validation": n_validation, "n_test": n_test}
    if n_unlabelled is not None:
        sizes["n_unlabelled"] = n_unlabelled
    negative = {k: v for k, v in sizes.items() if v < 0}
    if negative:
        raise ValueError(f"split sizes must be >= 0, got {negative}")
    fixed = n_labelled + n_validation + n_test + (n_unlabelled or 0)
    if fixed > len(labels):
        raise ValueError(f"asked for {fixed} examples ({sizes}) but the pool holds only {len(labels)}")
    rng = np.random.default_rng(seed)
    order = stratified_order(labels, rng) if stratify else rng.permutation(len(labels))
    cuts = np.cumsum([n_labelled, n_validation, n_test])
    labelled, validation, test, rest = np.split(order, cuts)
    unlabelled = rest if n_unlabelled is None else rest[:n_unlabelled]
    return SemiSupervisedSplit(np.sort(labelled), np.sort(validation), np.sort(unlabelled), np.sort(test))
