"""The dataset registry: one name, one spec, one loader."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Protocol

import numpy as np

from kdlib.data.dataset import Dataset, GraphDataset
from kdlib.data.sources import DataNotAvailableError

ALLOW_DOWNLOAD_ENV = "KDLIB_ALLOW_DOWNLOAD"


class Source(Protocol):
    def locate(self) -> dict | None: ...
    def fetch(self) -> None: ...
    def instructions(self) -> str: ...


Loader = Callable[[str, dict], Dataset | GraphDataset]
Downloader = Callable[[str], Dataset | GraphDataset]


@dataclass(frozen=True)
class DatasetSpec:
    """How to obtain and read one dataset.

    Attributes:
        name: registry name.
        splits: the splits ``load`` accepts; the first is the default.
        source: where the files come from (``None`` for data bundled with an installed package).
        read: ``read(split, files)`` builds the dataset from the located files.
        download: the standard downloader used only when ``KDLIB_ALLOW_DOWNLOAD=1`` and the files are missing.
        description: one line for the README and notebook 00 (origin, license, caveats).
    """

    name: str
    splits: tuple[str, ...]
    source: Source | None
    read: Loader
    download: Downloader | None
    description: str


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    """Names of every registered dataset."""
    return sorted(_REGISTRY)


def spec(name: str) -> DatasetSpec:
    """The spec of ``name``; unknown names raise a ``ValueError`` listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def load(name: str, split: str | None = None) -> Dataset | GraphDataset:
    """Load one split of a registered dataset from disk (never from the network by default).

    Loaded splits are kept in memory for the session, with read-only arrays: copy before changing them.

    Args:
        name: a name from :func:`available`.
        split: one of the dataset's splits; default: its first (``"train"`` for most, ``"full"`` for graphs).

    Raises:
        ValueError: unknown dataset or split.
        DataNotAvailableError: the files are not on disk; the message says how to obtain them.
        ChecksumError: a file on disk does not match its recorded sha256.
    """
    dataset_spec = spec(name)
    split = split or dataset_spec.splits[0]
    if split not in dataset_spec.splits:
        raise ValueError(f"dataset {name!r} has splits {list(dataset_spec.splits)}, not {split!r}")
    return _load_once(name, split)


@lru_cache(maxsize=32)
def _load_once(name: str, split: str) -> Dataset | GraphDataset:
    data = _read(spec(name), split)
    for value in vars(data).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return data


def _read(dataset_spec: DatasetSpec, split: str) -> Dataset | GraphDataset:
    name = dataset_spec.name
    if dataset_spec.source is None:
        return dataset_spec.read(split, {})
    files = dataset_spec.source.locate()
    if files is not None:
        return dataset_spec.read(split, files)
    if os.environ.get(ALLOW_DOWNLOAD_ENV) == "1" and dataset_spec.download is not None:
        return dataset_spec.download(split)
    hint = f" With internet access, {ALLOW_DOWNLOAD_ENV}=1 uses the standard downloader instead." if dataset_spec.download else ""
    raise DataNotAvailableError(f"dataset {name!r}: {dataset_spec.source.instructions()}.{hint}")


def prepare(names: list[str] | None = None) -> dict[str, str]:
    """Fetch the files of ``names`` (default: all) from their registries; returns a status per name."""
    status = {}
    for name in names or available():
        source = spec(name).source
        if source is None:
            status[name] = "bundled"
            continue
        already = source.locate() is not None
        source.fetch()
        status[name] = "present" if already else "fetched"
    return status


def data_version(name: str) -> Any:
    """What identifies a dataset's content in cache keys: its files' checksums (or the bundling package's version)."""
    source = spec(name).source
    if source is None:
        from importlib.metadata import version

        return {"bundled_by": "scikit-learn", "version": version("scikit-learn")}
    return {"files": dict(source.files)}
