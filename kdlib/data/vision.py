"""Image datasets: Fashion-MNIST (Debian), CIFAR-10 (vendored, JPEG-derived), digits (scikit-learn)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from kdlib.data import downloads
from kdlib.data.classes import FASHION_CLASSES
from kdlib.data.dataset import Dataset
from kdlib.data.registry import DatasetSpec, register
from kdlib.data.sources import DebianFiles, SharedFiles

_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_FILES = {
    f"{_FASHION_DIR}/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    f"{_FASHION_DIR}/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    f"{_FASHION_DIR}/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    f"{_FASHION_DIR}/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}


def read_idx(path: Path, offset: int) -> np.ndarray:
    """The payload bytes of a gzip IDX file (images start at byte 16, labels at byte 8)."""
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=offset)


def _read_fashion(split: str, files: dict) -> Dataset:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(files[f"{_FASHION_DIR}/{prefix}-images-idx3-ubyte.gz"], 16).reshape(-1, 28, 28)
    labels = read_idx(files[f"{_FASHION_DIR}/{prefix}-labels-idx1-ubyte.gz"], 8).astype(np.int64)
    return Dataset("fashion_mnist", split, images.copy(), labels, FASHION_CLASSES, "image")


register(
    DatasetSpec(
        name="fashion_mnist",
        splits=("train", "test"),
        source=DebianFiles("dataset-fashion-mnist", _FASHION_FILES),
        read=_read_fashion,
        download=downloads.fashion_mnist,
        description="Zalando Fashion-MNIST, 60k/10k 28x28 grey images, 10 classes (Debian dataset-fashion-mnist, MIT)",
    )
)

_CIFAR_FILES = {
    "train_images.png": "6ca2cb6a6e651b07b53a9cb4f6952cd902725430cee16ba23bddedfe778dfb3e",
    "train_labels.npz": "3b15c1618acf81259b0d7fc81e77949b809f05cfff96d30e7ab0c809fd7619b1",
    "test_images.png": "a1800bb08c4eefd3e42b7bf4e3c1719c9dcb29c95744462025ff5b4fccb630e2",
    "test_labels.npz": "0e575165bf213f5939a106bfca787afa5221922de870a107ed83b335dc440142",
}
_CIFAR_GRID = {"train": (250, 200), "test": (100, 100)}


def _read_cifar10(split: str, files: dict) -> Dataset:
    rows, cols = _CIFAR_GRID[split]
    mosaic = np.asarray(Image.open(files[f"{split}_images.png"]).convert("RGB"))
    images = mosaic.reshape(rows, 32, cols, 32, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 32, 32, 3)
    labels = np.load(files[f"{split}_labels.npz"])
    classes = tuple(str(c) for c in labels["classes"])
    return Dataset("cifar10", split, np.ascontiguousarray(images), labels["y"].astype(np.int64), classes, "image")


register(
    DatasetSpec(
        name="cifar10",
        splits=("train", "test"),
        source=SharedFiles("cifar10", _CIFAR_FILES),
        read=_read_cifar10,
        download=downloads.cifar10,
        description=(
            "CIFAR-10, 50k/10k 32x32 RGB, 10 classes; JPEG-derived copy (q=75, mean abs. pixel error 5.8/255): "
            "absolute accuracies run 2-3 points below the official binaries"
        ),
    )
)


def _read_digits(split: str, files: dict) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    test = _stratified_holdout(labels, fraction=0.2, seed=0)
    idx = np.flatnonzero(test if split == "test" else ~test)
    return Dataset("digits", split, images[idx], labels[idx], tuple(str(d) for d in range(10)), "image")


def _stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask holding out ``fraction`` of each class, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        mask[members[: int(round(fraction * len(members)))]] = True
    return mask


register(
    DatasetSpec(
        name="digits",
        splits=("train", "test"),
        source=None,
        read=_read_digits,
        download=None,
        description="scikit-learn's UCI handwritten digits, 1,797 8x8 images, 10 classes; fixed stratified 80/20 split (BSD-3)",
    )
)
