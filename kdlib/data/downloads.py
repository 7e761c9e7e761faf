"""Standard downloaders, used only when ``KDLIB_ALLOW_DOWNLOAD=1`` and the offline files are missing.

They need internet access and the downloader's own package (torchvision, Hugging Face ``datasets`` or
PyTorch Geometric), which kdlib does not depend on. Downloads land in ``$KDLIB_HOME/downloads``.
Note the online copies can differ from the offline ones (e.g. IMDB's official 25k/25k split, lossless CIFAR-10).
"""

from __future__ import annotations

import importlib

import numpy as np

from kdlib.data.classes import FASHION_CLASSES, PLANETOID_CLASSES
from kdlib.data.dataset import Dataset, GraphDataset
from kdlib.paths import kdlib_home


def _require(module: str, pip_name: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"KDLIB_ALLOW_DOWNLOAD=1 needs `{module}`: pip install {pip_name}") from error


def _torchvision(name: str, cls_name: str, split: str, classes: tuple[str, ...] | None = None) -> Dataset:
    datasets = _require("torchvision.datasets", "torchvision")
    data = getattr(datasets, cls_name)(str(kdlib_home() / "downloads"), train=split == "train", download=True)
    images = np.asarray(data.data, dtype=np.uint8)
    labels = np.asarray(data.targets, dtype=np.int64)
    return Dataset(name, split, images, labels, tuple(classes or data.classes), "image")


def fashion_mnist(split: str) -> Dataset:
    return _torchvision("fashion_mnist", "FashionMNIST", split, FASHION_CLASSES)


def cifar10(split: str) -> Dataset:
    return _torchvision("cifar10", "CIFAR10", split)


def _hugging_face(name: str, repo: str, hf_split: str, split: str, text_field: str, classes: tuple[str, ...]) -> Dataset:
    datasets = _require("datasets", "datasets")
    data = datasets.load_dataset(repo, split=hf_split, cache_dir=str(kdlib_home() / "downloads"))
    return Dataset(name, split, list(data[text_field]), np.asarray(data["label"], dtype=np.int64), classes, "text")


def imdb(split: str) -> Dataset:
    return _hugging_face("imdb", "stanfordnlp/imdb", split, split, "text", ("negative", "positive"))


def sst2(split: str) -> Dataset:
    if split == "test":
        raise ValueError("the public SST-2 test labels are hidden on the Hugging Face hub; use the vendored copy")
    return _hugging_face("sst2", "stanfordnlp/sst2", split, split, "sentence", ("negative", "positive"))


def ag_news(split: str) -> Dataset:
    return _hugging_face("ag_news", "fancyzhx/ag_news", split, split, "text", ("World", "Sports", "Business", "Sci/Tech"))


def planetoid(display_name: str) -> GraphDataset:
    datasets = _require("torch_geometric.datasets", "torch_geometric")
    data = datasets.Planetoid(str(kdlib_home() / "downloads" / "planetoid"), display_name)[0]
    return GraphDataset(
        name=display_name.lower(),
        split="full",
        x=data.x.numpy(),
        y=data.y.numpy(),
        edge_index=data.edge_index.numpy(),
        train_mask=data.train_mask.numpy(),
        val_mask=data.val_mask.numpy(),
        test_mask=data.test_mask.numpy(),
        classes=PLANETOID_CLASSES[display_name.lower()],
    )
