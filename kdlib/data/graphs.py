"""Planetoid citation graphs (Cora, CiteSeer) from the vendored original files (Yang et al. 2016)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from kdlib.data import downloads
from kdlib.data.classes import PLANETOID_CLASSES
from kdlib.data.dataset import GraphDataset
from kdlib.data.registry import DatasetSpec, register
from kdlib.data.sources import SharedFiles

_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
_SHA256 = {
    "cora": {
        "x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
        "y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
        "tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
        "ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
        "allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
        "ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
        "graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
        "test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    },
    "citeseer": {
        "x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
        "y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
        "tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
        "ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
        "allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
        "ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
        "graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
        "test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    },
}


def read_planetoid(name: str, files: dict[str, Path]) -> GraphDataset:
    """Rebuild features, labels, edges and the public split exactly as the GCN reference loader does."""
    objects = {}
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        with open(files[f"ind.{name}.{part}"], "rb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the 2016 pickles name scipy.sparse.csr
            objects[part] = pickle.load(handle, encoding="latin1")
    test_order = np.loadtxt(files[f"ind.{name}.test.index"], dtype=np.int64)
    test_sorted = np.sort(test_order)
    tx, ty = objects["tx"], objects["ty"]
    if name == "citeseer":  # isolated test-range nodes are missing from tx/ty: pad them with zeros
        span = test_sorted.max() - test_sorted.min() + 1
        tx_full = sp.lil_matrix((span, tx.shape[1]))
        tx_full[test_sorted - test_sorted.min(), :] = tx
        ty_full = np.zeros((span, ty.shape[1]))
        ty_full[test_sorted - test_sorted.min(), :] = ty
        tx, ty = tx_full, ty_full
    features = sp.vstack((objects["allx"], tx)).tolil()
    features[test_order, :] = features[test_sorted, :]
    onehot = np.vstack((objects["ally"], ty))
    onehot[test_order, :] = onehot[test_sorted, :]
    n = onehot.shape[0]

    edges = {(int(u), int(v)) for u, nbrs in objects["graph"].items() for v in nbrs if u != v and u < n and v < n}
    edges |= {(v, u) for u, v in edges}
    edge_index = np.array(sorted(edges), dtype=np.int64).T

    def mask(indices: np.ndarray) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[indices] = True
        return m

    n_train = objects["y"].shape[0]
    return GraphDataset(
        name=name,
        split="full",
        x=np.asarray(features.todense(), dtype=np.float32),
        y=onehot.argmax(1).astype(np.int64),
        edge_index=edge_index,
        train_mask=mask(np.arange(n_train)),
        val_mask=mask(np.arange(n_train, n_train + 500)),
        test_mask=mask(test_sorted),
        classes=PLANETOID_CLASSES[name],
    )


for _name, _display in (("cora", "Cora"), ("citeseer", "CiteSeer")):
    register(
        DatasetSpec(
            _name,
            ("full",),
            SharedFiles("planetoid", {f"ind.{_name}.{part}": _SHA256[_name][part] for part in _PARTS}),
            lambda split, files, _n=_name: read_planetoid(_n, files),
            lambda split, _d=_display: downloads.planetoid(_d),
            f"Planetoid {_display} citation graph (Sen et al. 2008; Yang et al. 2016, MIT), public split "
            f"(20 labels per class, 500 validation, 1,000 test); binary bag-of-words features",
        )
    )
