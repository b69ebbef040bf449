"""Level 3: file identity. Byte-copied files are compared by size and checksum.

Each pair gets one of two proofs, and its check says which (``FileCheck.proof``):

- ``store-checksum``: both objects carry their store's own full-object checksum of one algorithm (S3
  ``x-amz-checksum-crc32``/``crc32c``/``crc64nvme``/``sha*``, read by a HeadObject): the checksums and
  the sizes are compared and no byte of either object is read;
- ``read``: otherwise both files are read and hashed with xxh3-128.

Matching: a byte-for-byte copy keeps each source file's base name (only the directory changes), so
source and destination files are paired by base name unless an explicit ``source path -> destination
path`` mapping is given. A base name that occurs twice on one side cannot be paired that way and is
an error asking for the mapping. Both data files and delete files are compared: when every one of
them is identical on both sides, the destination's content is proven without decoding a row.

Files are streamed through each table's ``FileIO`` in chunks (never a whole file in memory), several
at a time on a small thread pool; hashing releases the GIL. The sizes read are also checked against
the sizes the manifests record, so a truncated file is caught on either side.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.errors import IceBridgeError, TerminalError, ValidationError
from icebridge.storage import StoredChecksum, stored_checksum

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile

__all__ = [
    "CHECKSUM",
    "READ",
    "STORE_CHECKSUM",
    "FileCheck",
    "FileMatch",
    "IdentityReport",
    "check_pair",
    "checksum_file",
    "compare_files",
    "identity_report",
    "match_files",
]

CHECKSUM = "xxh3-128"
STORE_CHECKSUM = "store-checksum"
READ = "read"
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FileMatch:
    """Source files paired with their destination counterparts, and those left without one."""

    pairs: list[tuple[DataFile, DataFile]]
    missing: list[DataFile]  # source files with no destination counterpart
    extra: list[DataFile]  # destination files with no source counterpart


def _basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def match_files(
    source_files: Iterable[DataFile],
    destination_files: Iterable[DataFile],
    mapping: Mapping[str, str] | None = None,
) -> FileMatch:
    """Pair files by ``mapping`` (source path -> destination path) or, without one, by base name.

    Raises:
        ValidationError: without a mapping, a base name occurs more than once on one side.
    """
    src = list(source_files)
    dst = list(destination_files)
    if mapping is not None:
        by_path = {d.file_path: d for d in dst}
        pairs, missing = [], []
        used: set[str] = set()
        for s in src:
            target = mapping.get(s.file_path)
            d = by_path.get(target) if target is not None else None
            if d is None:
                missing.append(s)
            else:
                pairs.append((s, d))
                used.add(d.file_path)
        return FileMatch(pairs, missing, [d for d in dst if d.file_path not in used])
    for side, files in (("source", src), ("destination", dst)):
        seen: dict[str, str] = {}
        for f in files:
            name = _basename(f.file_path)
            if name in seen:
                raise ValidationError(
                    f"{side} files {seen[name]} and {f.file_path} share the base name {name!r}; file identity "
                    "needs an explicit source-to-destination file mapping for such tables"
                )
            seen[name] = f.file_path
    by_name = {_basename(d.file_path): d for d in dst}
    pairs = []
    missing = []
    for s in src:
        d = by_name.pop(_basename(s.file_path), None)
        if d is None:
            missing.append(s)
        else:
            pairs.append((s, d))
    return FileMatch(pairs, missing, sorted(by_name.values(), key=lambda f: f.file_path))


def checksum_file(
    io: FileIO,
    path: str,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, str]:
    """(bytes read, xxh3-128 hex digest) of one file, streamed in chunks.

    ``progress`` gets ``(0, bytes)`` for every chunk read and ``(1, 0)`` once the file is read whole.

    Raises:
        ValidationError: the file cannot be opened or read.
    """
    try:
        import xxhash
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise TerminalError("file identity needs the 'xxhash' package: pip install xxhash") from exc
    h = xxhash.xxh3_128()
    size = 0
    try:
        with io.new_input(path).open() as stream:
            while True:
                chunk = stream.read(chunk_bytes)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(0, len(chunk))
    except Exception as exc:  # noqa: BLE001 - any storage error means the file cannot be vouched for
        raise ValidationError(f"{path}: cannot read for its checksum: {exc}") from exc
    if progress is not None:
        progress(1, 0)
    return size, h.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """One source file and its destination counterpart, byte for byte."""

    source: str
    destination: str
    content: str  # data, position-deletes, equality-deletes
    source_size: int  # bytes read
    destination_size: int
    source_recorded_size: int  # what the manifests say
    destination_recorded_size: int
    source_checksum: str
    destination_checksum: str
    proof: str = READ  # STORE_CHECKSUM (the stores' own checksums, nothing read) or READ (xxh3-128 of the bytes)
    checksum: str = CHECKSUM  # the algorithm compared, e.g. "xxh3-128" or "s3:CRC32"

    @property
    def identical(self) -> bool:
        """Same bytes on both sides, and each side as long as its manifest says."""
        return (
            self.source_size == self.destination_size == self.source_recorded_size == self.destination_recorded_size
            and self.source_checksum == self.destination_checksum
        )

    def problem(self) -> str:
        """Why the pair is not identical ('' when it is)."""
        if self.source_size != self.source_recorded_size:
            return f"source file has {self.source_size} bytes, its manifest says {self.source_recorded_size}"
        if self.destination_size != self.destination_recorded_size:
            return (
                f"destination file has {self.destination_size} bytes, its manifest says "
                f"{self.destination_recorded_size} (truncated or rewritten?)"
            )
        if self.source_size != self.destination_size:
            return f"sizes differ: {self.source_size} vs {self.destination_size} bytes"
        if self.source_checksum != self.destination_checksum:
            return f"{self.checksum} differs: {self.source_checksum} vs {self.destination_checksum}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for validation details."""
        return {
            "source": self.source,
            "destination": self.destination,
            "content": self.content,
            "source_size": self.source_size,
            "destination_size": self.destination_size,
            "source_checksum": self.source_checksum,
            "destination_checksum": self.destination_checksum,
            "proof": self.proof,
            "checksum": self.checksum,
            "problem": self.problem(),
        }


@dataclass
class IdentityReport:
    """Every file pair's check plus the files without a counterpart."""

    checks: list[FileCheck] = field(default_factory=list)
    missing: list[DataFile] = field(default_factory=list)
    extra: list[DataFile] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def all_identical(self) -> bool:
        """Every source file has an identical counterpart and the destination has nothing more."""
        return not self.missing and not self.extra and all(c.identical for c in self.checks)

    def differing(self) -> list[FileCheck]:
        """The pairs whose bytes or sizes differ."""
        return [c for c in self.checks if not c.identical]

    def proofs(self) -> dict[str, int]:
        """How many pairs got each proof (``store-checksum``, ``read``)."""
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.proof] = out.get(c.proof, 0) + 1
        return out

    def algorithms(self) -> list[str]:
        """The checksums compared, e.g. ``["s3:CRC32", "xxh3-128"]``."""
        return sorted({c.checksum for c in self.checks})


def _content(df: DataFile) -> str:
    return str(getattr(df.content, "name", df.content)).lower().replace("_", "-")


def compare_files(
    source_io: FileIO,
    destination_io: FileIO,
    match: FileMatch,
    workers: int = 4,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int, int], None] | None = None,
    store_checksums: bool = True,
) -> IdentityReport:
    """Checksum every matched pair on both sides (``workers`` files at a time).

    With ``store_checksums``, a pair whose objects both carry their store's own checksum of one
    algorithm is compared by those (nothing read); every other pair is read.

    ``progress`` gets ``(files, bytes)`` increments as files are read (see :func:`checksum_file`), from
    the worker threads.

    Raises:
        ValidationError: a file cannot be read at all (missing, permission denied).
    """

    def one(pair: tuple[DataFile, DataFile]) -> FileCheck:
        return check_pair(source_io, destination_io, *pair, chunk_bytes, progress, store_checksums)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="icebridge-identity") as pool:
        checks = list(pool.map(one, match.pairs))
    return identity_report(checks, match)


def identity_report(checks: Iterable[FileCheck], match: FileMatch) -> IdentityReport:
    """The report of ``match``'s pairs checked as ``checks`` (in any order), wherever they were checked."""
    ordered = sorted(checks, key=lambda c: c.source)
    read = sum(c.source_size + c.destination_size for c in ordered if c.proof == READ)
    return IdentityReport(checks=ordered, missing=list(match.missing), extra=list(match.extra), bytes_read=read)


def check_pair(
    source_io: FileIO,
    destination_io: FileIO,
    s: DataFile,
    d: DataFile,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Callable[[int, int], None] | None = None,
    store_checksums: bool = True,
) -> FileCheck:
    """One source file and its copy compared: by the stores' own checksums when both have one of the same
    algorithm (with ``store_checksums``), else by reading and hashing both. The one check of level 3,
    run by :func:`compare_files`'s threads here and by the Spark executors (``validation.spark_exec``).

    Raises:
        ValidationError: a file cannot be read at all (missing, permission denied).
    """
    stored = _stored_pair(source_io, s.file_path, destination_io, d.file_path) if store_checksums else None
    if stored is not None:
        s_stored, d_stored = stored
        if progress is not None:  # the files count as covered, though none of their bytes is read
            progress(2, int(s.file_size_in_bytes) + int(d.file_size_in_bytes))
        return FileCheck(
            source=s.file_path,
            destination=d.file_path,
            content=_content(s),
            source_size=s_stored.size,
            destination_size=d_stored.size,
            source_recorded_size=int(s.file_size_in_bytes),
            destination_recorded_size=int(d.file_size_in_bytes),
            source_checksum=s_stored.value,
            destination_checksum=d_stored.value,
            proof=STORE_CHECKSUM,
            checksum=s_stored.algorithm,
        )
    s_size, s_sum = checksum_file(source_io, s.file_path, chunk_bytes, progress)
    d_size, d_sum = checksum_file(destination_io, d.file_path, chunk_bytes, progress)
    return FileCheck(
        source=s.file_path,
        destination=d.file_path,
        content=_content(s),
        source_size=s_size,
        destination_size=d_size,
        source_recorded_size=int(s.file_size_in_bytes),
        destination_recorded_size=int(d.file_size_in_bytes),
        source_checksum=s_sum,
        destination_checksum=d_sum,
    )


def _stored_pair(
    source_io: FileIO, source_path: str, destination_io: FileIO, destination_path: str
) -> tuple[StoredChecksum, StoredChecksum] | None:
    """Both objects' own checksums when they have one of the same algorithm; None to fall back to reading.

    Raises:
        ValidationError: an object does not exist or cannot be asked for its metadata.
    """
    try:
        source = stored_checksum(source_io, source_path)
        if source is None:
            return None
        destination = stored_checksum(destination_io, destination_path)
    except IceBridgeError as exc:
        raise ValidationError(f"cannot read the stored checksum: {exc}") from exc
    if destination is None or destination.algorithm != source.algorithm:
        return None
    return source, destination
