"""Copying files through a table's FileIO: byte for byte, overwriting, on every path the copy can take."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from pyiceberg.io.pyarrow import PyArrowFileIO

from icebridge import storage
from icebridge.errors import StorageTransientError, TerminalError


def _source(tmp_path: Path, size: int = 3 * 1024 * 1024 + 17) -> Path:
    path = tmp_path / "in" / "part-0.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(size))
    return path


def test_local_copy_is_byte_for_byte_and_overwrites_a_longer_partial_copy(tmp_path: Path) -> None:
    src = _source(tmp_path)
    dst = tmp_path / "out" / "deep" / "part-0.parquet"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(b"x" * (src.stat().st_size + 1000))  # a longer leftover from an earlier try
    io = PyArrowFileIO()
    size = src.stat().st_size
    assert storage.copy_file(io, f"file://{src}", io, f"file://{dst}", size) == size
    assert dst.read_bytes() == src.read_bytes()


def test_local_copy_falls_back_when_the_kernel_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source(tmp_path)

    def refuse(*_args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    dst = tmp_path / "out" / "part-0.parquet"
    assert storage.copy_local(str(src), str(dst)) == src.stat().st_size
    assert dst.read_bytes() == src.read_bytes()


def test_other_kernel_errors_are_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _source(tmp_path)

    def full(*_args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    io = PyArrowFileIO()
    with pytest.raises(Exception, match="No space left"):
        storage.copy_file(io, str(src), io, str(tmp_path / "out" / "x.parquet"), src.stat().st_size)


def test_a_source_shorter_than_its_manifest_entry_is_refused_and_the_copy_removed(tmp_path: Path) -> None:
    src = _source(tmp_path, size=1000)
    dst = tmp_path / "out" / "part-0.parquet"
    io = PyArrowFileIO()
    with pytest.raises(TerminalError, match="read 1000 bytes but the manifest says 2000"):
        storage.copy_file(io, str(src), io, str(dst), 2000)
    assert not dst.exists()


class _Stored:
    """An input file whose size lookup fails with a plain OSError, as some object stores report a missing key."""

    def __init__(self, exists: bool) -> None:
        self._exists = exists

    def __len__(self) -> int:
        raise OSError("the object store answered 404")

    def exists(self) -> bool:
        return self._exists


class _StoreIO:
    def __init__(self, exists: bool) -> None:
        self.exists = exists

    def new_input(self, location: str) -> _Stored:
        return _Stored(self.exists)


def test_file_size_asks_the_file_io_whether_a_file_exists(tmp_path: Path) -> None:
    src = _source(tmp_path, size=1234)
    io = PyArrowFileIO()
    assert storage.file_size(io, str(src)) == 1234
    assert storage.file_size(io, str(tmp_path / "nowhere.parquet")) is None
    # a missing object reported in other words than FileNotFoundError is still missing
    assert storage.file_size(_StoreIO(exists=False), "s3://b/missing.parquet") is None  # type: ignore[arg-type]
    # a failure on a file that is there is not taken for a missing file
    with pytest.raises(StorageTransientError, match="inspecting s3://b/there.parquet"):
        storage.file_size(_StoreIO(exists=True), "s3://b/there.parquet")  # type: ignore[arg-type]
