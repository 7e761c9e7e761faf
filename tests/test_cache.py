import pickle

import numpy as np
import pytest
import torch

from kdlib.cache import Cache, CorruptCacheEntry, fingerprint


def test_fingerprint_is_stable_and_content_sensitive():
    a = {"x": np.arange(5), "cfg": {"lr": 0.1, "widths": (8, 16)}}
    b = {"cfg": {"widths": (8, 16), "lr": 0.1}, "x": np.arange(5)}  # same content, other key order
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint({**a, "x": np.arange(5) + 1})
    assert fingerprint(np.arange(5, dtype=np.int64)) != fingerprint(np.arange(5, dtype=np.int32))
    assert fingerprint(torch.arange(5)) == fingerprint(np.arange(5))
    assert fingerprint([1, 2]) != fingerprint((1, 2))
    assert fingerprint(1) != fingerprint(1.0) != fingerprint("1")


def test_fingerprint_refuses_opaque_objects():
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint({"model": object()})


def test_get_or_compute_computes_once_per_key(tmp_path):
    cache, calls = Cache(tmp_path), []
    compute = lambda: calls.append(1) or {"value": np.ones(3)}  # noqa: E731
    first = cache.get_or_compute("ns", {"k": 1}, compute)
    second = cache.get_or_compute("ns", {"k": 1}, compute)
    np.testing.assert_array_equal(first["value"], second["value"])
    assert len(calls) == 1
    cache.get_or_compute("ns", {"k": 2}, compute)  # a changed key is a new entry
    assert len(calls) == 2


def test_killed_write_leaves_no_entry(tmp_path, monkeypatch):
    cache = Cache(tmp_path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(pickle, "dump", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.save("ns", "abc", [1, 2, 3])
    assert not cache.contains("ns", "abc")
    assert not any((tmp_path / "ns").iterdir())  # no temporary folder left behind


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path):
    cache = Cache(tmp_path)
    cache.get_or_compute("ns", "key", lambda: [1, 2, 3])
    key = fingerprint("key")
    payload = cache.path("ns", key) / "payload.pkl"
    payload.write_bytes(payload.read_bytes()[:-3] + b"xyz")
    with pytest.raises(CorruptCacheEntry, match="checksum"):
        cache.load("ns", key)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert cache.get_or_compute("ns", "key", lambda: [4, 5]) == [4, 5]
    assert cache.load("ns", key) == [4, 5]


def test_bad_namespace(tmp_path):
    with pytest.raises(ValueError, match="namespace"):
        Cache(tmp_path).path("../escape", "k")
