"""A content-keyed on-disk cache for trained teachers, teacher outputs, embeddings and grid cells.

An entry's key is a hash of everything that determines its value (data, model config, training recipe,
code version), so changing any of them makes a new entry. Writes are atomic: the entry is written to a
temporary folder and renamed into place, so a killed run never leaves a half-written entry. Each entry
stores the sha256 of its payload; an entry whose payload does not match is reported, deleted and rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import scipy.sparse
import torch

from kdlib.paths import cache_root

T = TypeVar("T")

_PAYLOAD = "payload.pkl"
_META = "meta.json"


class CorruptCacheEntry(RuntimeError):
    """An on-disk entry whose payload does not match its recorded checksum or cannot be read."""


def fingerprint(obj: Any) -> str:
    """A stable sha256 hex digest of ``obj``'s content.

    Supports None, bool, int, float, str, bytes, lists/tuples, dicts (key order ignored), dataclasses,
    numpy arrays and torch tensors (dtype, shape and bytes). Anything else raises ``TypeError`` so that
    a key can never silently depend on an object's ``id``.
    """
    digest = hashlib.sha256()
    _update(digest, obj)
    return digest.hexdigest()


def _update(digest: "hashlib._Hash", obj: Any) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, bytes):
        digest.update(b"bytes:" + hashlib.sha256(obj).digest())
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{type(obj).__name__}[{len(obj)}](".encode())
        for item in obj:
            _update(digest, item)
        digest.update(b")")
    elif isinstance(obj, dict):
        digest.update(f"dict[{len(obj)}](".encode())
        for key in sorted(obj, key=repr):
            _update(digest, key)
            _update(digest, obj[key])
        digest.update(b")")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        digest.update(f"dataclass:{type(obj).__qualname__}".encode())
        _update(digest, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif isinstance(obj, torch.Tensor):
        _update(digest, obj.detach().cpu().contiguous().numpy())
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            _update(digest, obj.tolist())
        else:
            array = np.ascontiguousarray(obj)
            digest.update(f"ndarray:{array.dtype.str}:{array.shape}:".encode())
            digest.update(hashlib.sha256(array.view(np.uint8).reshape(-1)).digest())
    elif isinstance(obj, np.generic):
        _update(digest, obj.item())
    elif scipy.sparse.issparse(obj):
        csr = obj.tocsr()
        digest.update(f"sparse:{csr.shape}:".encode())
        _update(digest, [csr.data, csr.indices, csr.indptr])
    else:
        raise TypeError(f"cannot fingerprint object of type {type(obj).__name__}; pass its defining data instead")


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Cache:
    """A namespace-separated on-disk cache rooted at ``root`` (default: :func:`kdlib.paths.cache_root`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root()

    def path(self, namespace: str, key: str) -> Path:
        """The folder of one entry."""
        if not namespace or "/" in namespace or namespace.startswith("."):
            raise ValueError(f"namespace must be a plain non-empty name, got {namespace!r}")
        return self.root / namespace / key

    def contains(self, namespace: str, key: str) -> bool:
        """Whether a complete entry exists (its checksum is not verified here)."""
        return (self.path(namespace, key) / _META).exists()

    def load(self, namespace: str, key: str) -> Any:
        """Read an entry; raise ``KeyError`` if absent and :class:`CorruptCacheEntry` if damaged."""
        entry = self.path(namespace, key)
        meta_path = entry / _META
        if not meta_path.exists():
            raise KeyError(f"no cache entry {namespace}/{key}")
        try:
            meta = json.loads(meta_path.read_text())
            payload = entry / _PAYLOAD
            if sha256_file(payload) != meta["sha256"]:
                raise CorruptCacheEntry(f"cache entry {entry} does not match its checksum")
            with open(payload, "rb") as handle:
                return pickle.load(handle)
        except CorruptCacheEntry:
            raise
        except Exception as error:  # unreadable meta or payload
            raise CorruptCacheEntry(f"cache entry {entry} cannot be read: {error}") from error

    def save(self, namespace: str, key: str, value: Any, description: Any = None) -> None:
        """Write an entry atomically (temporary folder, then rename)."""
        entry = self.path(namespace, key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=entry.parent))
        try:
            with open(tmp / _PAYLOAD, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            meta = {"sha256": sha256_file(tmp / _PAYLOAD), "description": description}
            (tmp / _META).write_text(json.dumps(meta, default=str, indent=1))
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def delete(self, namespace: str, key: str) -> None:
        """Remove an entry if present."""
        shutil.rmtree(self.path(namespace, key), ignore_errors=True)

    def lookup(self, namespace: str, key_data: Any) -> tuple[bool, Any]:
        """``(True, value)`` for a cached ``key_data``, else ``(False, None)``; a corrupt entry is reported with a
        warning, deleted and counts as missing."""
        key = fingerprint(key_data)
        try:
            return True, self.load(namespace, key)
        except KeyError:
            return False, None
        except CorruptCacheEntry as error:
            warnings.warn(f"{error}; rebuilding it", stacklevel=3)
            self.delete(namespace, key)
            return False, None

    def store(self, namespace: str, key_data: Any, value: Any) -> None:
        """Save ``value`` under ``key_data`` (atomically, with a readable trace of the key)."""
        self.save(namespace, fingerprint(key_data), value, description=_describe(key_data))

    def get_or_compute(self, namespace: str, key_data: Any, compute: Callable[[], T]) -> T:
        """Return the cached value for ``key_data``, computing and storing it on a miss."""
        found, value = self.lookup(namespace, key_data)
        if not found:
            value = compute()
            self.store(namespace, key_data, value)
        return value


def _describe(key_data: Any) -> Any:
    """A short human-readable trace of what an entry was keyed on (for people browsing the cache)."""
    if isinstance(key_data, dict):
        return {str(k): (v if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__) for k, v in key_data.items()}
    return type(key_data).__name__
