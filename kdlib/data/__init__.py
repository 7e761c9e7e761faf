"""Real datasets, offline: ``kdlib.data.load(name, split=...)`` and ``kdlib.data.available()``."""

from kdlib.data import graphs, text, vision  # noqa: F401  (registers the datasets)
from kdlib.data.dataset import Dataset, GraphDataset
from kdlib.data.registry import available, data_version, load, prepare, spec
from kdlib.data.sources import ChecksumError, DataNotAvailableError
from kdlib.data.splits import SemiSupervisedSplit, semi_supervised_split

__all__ = [
    "ChecksumError",
    "DataNotAvailableError",
    "Dataset",
    "GraphDataset",
    "SemiSupervisedSplit",
    "available",
    "data_version",
    "load",
    "prepare",
    "semi_supervised_split",
    "spec",
]
