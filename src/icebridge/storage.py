"""Files through a table's FileIO: streamed copies, listings and deletes (local paths and object stores alike)."""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyiceberg.io import FileIO

from icebridge.errors import DestinationWriteError, IceBridgeError, StorageTransientError, TerminalError

COPY_CHUNK_BYTES = 8 * 1024 * 1024
# Bytes asked of one copy_file_range call (the kernel may copy fewer; the loop goes on until end of file).
_RANGE_BYTES = 1 << 30
# copy_file_range is refused across some file systems and on old kernels: copy through user space then.
_NO_RANGE_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP})


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int


def storage_error(exc: BaseException, what: str) -> IceBridgeError:
    """Our error for a storage failure: missing or forbidden is terminal, anything else may pass on retry."""
    if isinstance(exc, IceBridgeError):
        return exc
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return TerminalError(f"{what}: {exc}")
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return StorageTransientError(f"{what}: {exc}")
    return TerminalError(f"{what}: {type(exc).__name__}: {exc}")


def _native(io: FileIO, location: str) -> tuple[Any, str] | None:
    """The PyArrow filesystem and path behind a location, when ``io`` is PyIceberg's PyArrowFileIO."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if not isinstance(io, PyArrowFileIO):
        return None
    scheme, netloc, path = PyArrowFileIO.parse_location(location, io.properties)
    return io.fs_by_scheme(scheme, netloc), path


def copy_file(source_io: FileIO, source_path: str, dest_io: FileIO, dest_path: str, expected_size: int) -> int:
    """Stream one file from source to destination in chunks (never whole in memory); returns bytes written.

    Local to local, the kernel copies (``copy_file_range``: no user-space buffer, and a reflink on
    file systems that share blocks), as ``cp`` does. Between other PyArrow filesystems (S3, GCS, ...)
    Arrow's own copy streams the bytes in C++ without passing them through Python; any other FileIO is
    streamed here. The destination is overwritten, so a retried copy replaces a partial one instead of
    duplicating it.
    """
    import pyarrow.fs as pafs

    source_native, dest_native = _native(source_io, source_path), _native(dest_io, dest_path)
    written = 0
    try:
        if (
            source_native
            and dest_native
            and isinstance(source_native[0], pafs.LocalFileSystem)
            and isinstance(dest_native[0], pafs.LocalFileSystem)
        ):
            written = copy_local(source_native[1], dest_native[1])
        elif source_native and dest_native:
            dest_native[0].create_dir(posixpath.dirname(dest_native[1]), recursive=True)
            pafs.copy_files(
                source_native[1],
                dest_native[1],
                source_native[0],
                dest_native[0],
                chunk_size=COPY_CHUNK_BYTES,
                use_threads=False,
            )
            written = dest_native[0].get_file_info(dest_native[1]).size or 0
        else:
            with source_io.new_input(source_path).open(seekable=False) as reader:
                with dest_io.new_output(dest_path).create(overwrite=True) as writer:
                    while chunk := reader.read(COPY_CHUNK_BYTES):
                        writer.write(chunk)
                        written += len(chunk)
    except Exception as exc:
        raise storage_error(exc, f"copying {source_path} to {dest_path}") from exc
    if written != expected_size:
        _quiet_delete(dest_io, dest_path)
        raise TerminalError(
            f"{source_path}: read {written} bytes but the manifest says {expected_size}; the source file is damaged"
        )
    return written


def copy_local(source: str, dest: str) -> int:
    """Copy a local file in the kernel (``copy_file_range``), or through user space where refused; bytes written."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with open(source, "rb") as fin, open(dest, "wb") as fout:
        try:
            while os.copy_file_range(fin.fileno(), fout.fileno(), _RANGE_BYTES):
                pass
        except OSError as exc:
            if exc.errno not in _NO_RANGE_COPY:
                raise
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, COPY_CHUNK_BYTES)
        fout.flush()
        return os.fstat(fout.fileno()).st_size


def file_size(io: FileIO, path: str) -> int | None:
    """Size of a stored file, or None when it does not exist.

    A FileIO that reports a missing object with some other error than ``FileNotFoundError`` is asked
    whether the file exists, in its own terms (``InputFile.exists``), before the error is raised.
    """
    stored = io.new_input(path)
    try:
        return len(stored)
    except FileNotFoundError:
        return None
    except OSError as exc:
        try:
            missing = not stored.exists()
        except OSError:
            missing = False
        if missing:
            return None
        raise storage_error(exc, f"inspecting {path}") from exc


def same_bytes(io_a: FileIO, path_a: str, io_b: FileIO, path_b: str) -> bool:
    """Whether two stored files hold the same bytes (streamed side by side)."""
    with io_a.new_input(path_a).open(seekable=False) as a, io_b.new_input(path_b).open(seekable=False) as b:
        while True:
            chunk_a = a.read(COPY_CHUNK_BYTES)
            chunk_b = b.read(COPY_CHUNK_BYTES)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


def list_files(io: FileIO, prefix: str) -> Iterator[StoredFile]:
    """Every file under ``prefix`` (recursively), with its location spelled like ``prefix``."""
    from pyarrow.fs import FileSelector, FileType
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if not isinstance(io, PyArrowFileIO):
        raise TerminalError(f"listing files needs PyIceberg's PyArrowFileIO, not {type(io).__name__}")
    scheme, netloc, path = PyArrowFileIO.parse_location(prefix, io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    root = prefix.rstrip("/")
    base = path.rstrip("/")
    try:
        infos = fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
    except Exception as exc:
        raise storage_error(exc, f"listing {prefix}") from exc
    for info in infos:
        if info.type == FileType.File:
            relative = posixpath.relpath(info.path, base)
            yield StoredFile(f"{root}/{relative}", info.size or 0)


def delete_file(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except FileNotFoundError:
        return
    except Exception as exc:
        raise DestinationWriteError(f"cannot delete {path}: {exc}") from exc


def _quiet_delete(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except Exception:  # best effort: the orphan sweep removes what is left
        return
