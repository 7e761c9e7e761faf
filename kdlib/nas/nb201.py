"""The NAS-Bench-201 cell space (= NATS-Bench topology, 15,625 cells) with the accuracies shipped in the
``analog-nasbench==0.1.3`` wheel, and a parameter / MAC count computed here from the architecture.

The table (``analognasbench/data.anb``, a pickled dict) keys each cell by a 6-tuple of operation ids 0-4. It holds one
"baseline" accuracy per cell (CIFAR-10-like; the package does not name the dataset) and no validation/test split, so
the same number is both the search signal and the reported accuracy. The id -> operation map and the edge order are
undocumented; they were inferred (notes, DATA.md) and are checked by the tests: with id 1 = ``none`` and the edge
order below, exactly the 341 cells whose output is cut off from the input sit at 10.0 (chance).

The network is NB-201's CIFAR-10 macro skeleton: a 3x3 stem to 16 channels, three stages of N = 5 cells at
16 / 32 / 64 channels and 32² / 16² / 8² pixels joined by two ResNet reduction blocks, BN-ReLU, global pooling and a
linear classifier. Every cell edge applies its operation; ``nor_conv_kxk`` is ReLU-Conv(no bias)-BN(affine).
"""

from __future__ import annotations

import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np

from kdlib.cache import Cache, sha256_file
from kdlib.nas import cost
from kdlib.nas.cost import BatchNorm, Conv
from kdlib.nas.space import Arch, Layer, SearchSpace, table_space

OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")  # index = the table's op id
EDGES = ("1<-0", "2<-0", "3<-0", "2<-1", "3<-1", "3<-2")  # position in the table's 6-tuple
CELLS_PER_STAGE = 5
STAGES = ((16, 32), (32, 16), (64, 8))  # (channels, spatial side) of each stage
NUM_CLASSES = 10
PACKAGE = "analognasbench"


def table_path() -> Path:
    """``data.anb`` inside the installed wheel, located without importing the package (it imports ``pkg_resources``)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed: pip install analog-nasbench==0.1.3")
    return Path(spec.submodule_search_locations[0]) / "data.anb"


class _Record:
    """Stand-in for the pickled ``analognasbench.data`` classes: only their attributes are kept."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _TableUnpickler(pickle.Unpickler):
    """Reads the table without importing ``analognasbench`` and refuses any other class (a pickle is code)."""

    def find_class(self, module: str, name: str):
        if module == f"{PACKAGE}.data" and name in ("Architecture", "DriftMeasurement"):
            return _Record
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in {PACKAGE}'s table")


@lru_cache(maxsize=1)
def load_accuracies(cache: Cache | None = None) -> np.ndarray:
    """Baseline accuracy (fraction) of every cell as an array of shape (5,)*6 indexed by the table's op ids.

    Unpickling the table takes seconds, so the array is cached, keyed by the table file's checksum.
    """
    path = table_path()
    accuracy = (cache or Cache()).get_or_compute("nas_tables", {"table": sha256_file(path), "version": 1}, lambda: _read_table(path))
    accuracy.setflags(write=False)
    return accuracy


def _read_table(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        table = _TableUnpickler(handle).load()
    accuracy = np.full((len(OPS),) * len(EDGES), np.nan)
    for key, record in table.items():
        accuracy[tuple(key)] = float(record.baseline_accuracy) / 100.0
    if np.isnan(accuracy).any():
        raise ValueError(f"{path} does not cover all {accuracy.size} cells")
    return accuracy


def output_connected(arch: Arch) -> bool:
    """Whether some path of non-``none`` edges joins the cell's input (node 0) to its output (node 3)."""
    reached = {0}
    for node in (1, 2, 3):
        if any(OPS[op] != "none" and int(edge[-1]) in reached for edge, op in zip(EDGES, arch) if int(edge[0]) == node):
            reached.add(node)
    return 3 in reached


def layers(arch: Arch) -> list[Conv | BatchNorm]:
    """Every weight layer of the NB-201 network with cell ``arch`` (pooling, skip and none have no weights)."""
    out = [Conv(3, STAGES[0][0], 3, STAGES[0][1])]  # stem
    for stage, (channels, side) in enumerate(STAGES):
        if stage > 0:  # ResNet reduction block: 3x3 stride 2, 3x3, and an avg-pool + 1x1 shortcut (no BN)
            c_in = STAGES[stage - 1][0]
            out += [Conv(c_in, channels, 3, side), Conv(channels, channels, 3, side), Conv(c_in, channels, 1, side, bn=False)]
        for _ in range(CELLS_PER_STAGE):
            for op in arch:
                if OPS[op] == "nor_conv_3x3":
                    out.append(Conv(channels, channels, 3, side))
                elif OPS[op] == "nor_conv_1x1":
                    out.append(Conv(channels, channels, 1, side))
    channels = STAGES[-1][0]
    out.append(BatchNorm(channels))  # BN-ReLU before global pooling
    out.append(Conv(channels, NUM_CLASSES, 1, 1, bn=False, bias=True))  # classifier
    return out


def parameters(arch: Arch) -> int:
    """Trainable parameters of the NB-201 CIFAR-10 network with cell ``arch``."""
    return cost.parameters(layers(arch))


def macs(arch: Arch) -> int:
    """Multiply-accumulates of one forward pass on a 32x32 image (convolutions and the classifier; BN, ReLU and
    pooling are not counted)."""
    return cost.macs(layers(arch))


COSTS = {"params": parameters, "macs": macs}


def nb201_space(cost_model: str = "params", cache: Cache | None = None) -> SearchSpace:
    """The 15,625-cell space; ``cost_model`` is ``"params"`` or ``"macs"``; reward = report = the table's accuracy."""
    if cost_model not in COSTS:
        raise ValueError(f"cost_model must be one of {sorted(COSTS)}, got {cost_model!r}")
    accuracy = load_accuracies(cache)
    count = lru_cache(maxsize=None)(COSTS[cost_model])  # every edge has the same shape: the cost depends on the op multiset
    costs = np.empty(accuracy.shape)
    for index in np.ndindex(accuracy.shape):
        costs[index] = count(tuple(sorted(index)))
    return table_space(
        "NB-201", [Layer(f"e{edge}", OPS) for edge in EDGES], costs, accuracy, accuracy,
        cost_name="parameters" if cost_model == "params" else "MACs",
        description="NAS-Bench-201 cells, analog-nasbench baseline accuracy (one accuracy: search signal = reported)",
    )
