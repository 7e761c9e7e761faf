"""Containers returned by :func:`kdlib.data.load`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np


class _Labelled:
    """Shared by every container with labels ``y`` and class names ``classes``."""

    y: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """Examples per class, in class order."""
        return np.bincount(self.y, minlength=self.num_classes)


@dataclass(frozen=True)
class Dataset(_Labelled):
    """One split of a labelled dataset.

    Attributes:
        name: registry name, e.g. ``"fashion_mnist"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        x: images as ``uint8`` arrays (N, H, W) or (N, H, W, 3), feature arrays, or a list of texts.
        y: integer labels (N,).
        classes: class names, ``classes[y[i]]`` is example i's class.
        modality: ``"image"``, ``"text"`` or ``"tabular"``.
    """

    name: str
    split: str
    x: np.ndarray | list[str]
    y: np.ndarray
    classes: tuple[str, ...]
    modality: str

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}/{self.split}: {len(self.x)} inputs but {len(self.y)} labels")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(f"{self.name}/{self.split}: labels outside 0..{len(self.classes) - 1}")

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Dataset":
        """The examples at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        x = [self.x[i] for i in idx] if isinstance(self.x, list) else self.x[idx]
        return replace(self, x=x, y=self.y[idx])


@dataclass(frozen=True)
class GraphDataset(_Labelled):
    """A node-classification graph with the standard Planetoid split masks.

    Attributes:
        x: node features (N, F) float32 (binary bag of words, not normalised).
        y: node labels (N,).
        edge_index: (2, E) int64, both directions of every undirected edge, no self loops.
        train_mask, val_mask, test_mask: boolean (N,) masks of the public split.
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    edge_index: np.ndarray
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray
    classes: tuple[str, ...]
    modality: str = "graph"
