"""Order-independent content digests of Arrow data.

A digest is ``count`` + ``sum`` (mod 2**64) + ``xor`` of a 64-bit hash per row. The row hash
(:mod:`icebridge.validation.rowhash`) is computed inside DuckDB, vectorised over each Arrow batch (zero
copy): swapping two values between columns, nulls in different columns, zero values and all-null rows
give distinct hashes, ``-0.0 != 0.0``, and every NaN hashes alike, distinct from null.

Sum and xor are aggregated inside DuckDB per batch and folded in Python; batches are never concatenated.
Digests are comparable only when ``library`` (DuckDB version and hash scheme) is equal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa

from icebridge.validation.parquet_scan import Locator, eligible, scan_digests, scan_plan
from icebridge.validation.reader import (
    FIELD_ID_KEY,
    DataFileTask,
    SnapshotFiles,
    _duck_safe,
    iter_table_batches,
)
from icebridge.validation.rowhash import HASH_SCHEME, row_hash_sql, type_tag

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

__all__ = [
    "HASH_SCHEME",
    "Digest",
    "FileDigest",
    "PartitionDigests",
    "RowHasher",
    "digest_batches",
    "file_digests",
    "library_version",
    "merge_file_digests",
    "partition_digests",
    "row_hash_sql",
    "table_digest",
]

_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Digest:
    """Order-independent digest of a set of rows."""

    count: int
    sum: int  # sum of row hashes mod 2**64, unsigned
    xor: int  # xor of row hashes, unsigned 64-bit
    library: str  # what computed the hashes; digests are comparable only with the same value

    def matches(self, other: Digest) -> bool:
        """True when count, sum, xor and library are all equal."""
        return (
            self.count == other.count
            and self.sum == other.sum
            and self.xor == other.xor
            and self.library == other.library
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return {"count": self.count, "sum": self.sum, "xor": self.xor, "library": self.library}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Digest:
        """Inverse of :meth:`to_dict`."""
        return cls(int(data["count"]), int(data["sum"]), int(data["xor"]), str(data["library"]))


def _library() -> str:
    import duckdb

    return f"duckdb {duckdb.__version__} {HASH_SCHEME}"


def library_version() -> str:
    """What computes the row hashes (DuckDB version and hash scheme); recorded in every report."""
    return _library()


# --------------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------------


def _select_columns(batch: pa.RecordBatch, field_ids: Sequence[int] | None) -> list[int]:
    if field_ids is None:
        return list(range(batch.num_columns))
    by_id: dict[int, int] = {}
    for i, f in enumerate(batch.schema):
        raw = (f.metadata or {}).get(FIELD_ID_KEY)
        if raw is not None:
            by_id[int(raw)] = i
    missing = [fid for fid in field_ids if fid not in by_id]
    if missing:
        raise ValueError(f"field ids {missing} are not among the batch's columns (field-id metadata)")
    return [by_id[fid] for fid in sorted(set(field_ids))]


class RowHasher:
    """Row hashes of Arrow batches of one layout, computed in DuckDB on a private connection.

    One hasher serves one thread (a DuckDB connection is not shared). The columns hashed are chosen
    as in :func:`digest_batches`; their types must not change from one batch to the next.
    """

    def __init__(self, field_ids: Sequence[int] | None = None) -> None:
        import duckdb

        self._field_ids = field_ids
        self._con = duckdb.connect()
        self._types: list[pa.DataType] | None = None
        self._hash_sql = ""

    def close(self) -> None:
        """Release the DuckDB connection."""
        self._con.close()

    def __enter__(self) -> RowHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _relation(self, batch: pa.RecordBatch, keys: Sequence[pa.Array] = ()) -> pa.Table:
        if isinstance(batch, pa.Table):
            raise TypeError("RowHasher takes RecordBatches, not a Table (use to_batches())")
        cols = _select_columns(batch, self._field_ids)
        batch_types = [batch.schema.field(i).type for i in cols]
        if self._types is None:
            self._types = batch_types
            self._hash_sql = row_hash_sql(batch_types, [f"c{i}" for i in range(len(cols))])
        elif [type_tag(t) for t in batch_types] != [type_tag(t) for t in self._types]:
            raise ValueError(f"batch column types changed: {batch_types} vs {self._types}")
        arrays = [batch.column(i) for i in cols] + [_duck_safe(k) for k in keys]
        names = [f"c{i}" for i in range(len(cols))] + [f"k{i}" for i in range(len(keys))]
        return pa.Table.from_arrays(arrays, names=names)

    def hashes(self, batch: pa.RecordBatch) -> pa.Array:
        """The 64-bit hash of every row of ``batch`` (uint64, in row order)."""
        rel = self._relation(batch)
        self._con.register("__batch", rel)
        try:
            out = self._con.sql(f"SELECT {self._hash_sql} AS h FROM __batch").to_arrow_table()
        finally:
            self._con.unregister("__batch")
        return out.column("h").combine_chunks()

    def grouped(
        self, batch: pa.RecordBatch, keys: Sequence[pa.Array] = ()
    ) -> list[tuple[tuple[Any, ...], int, int, int]]:
        """Per distinct value of ``keys`` (one array per key, aligned with the rows): count, sum, xor."""
        if batch.num_rows == 0:
            return []
        rel = self._relation(batch, keys)
        key_cols = [f"k{i}" for i in range(len(keys))]
        select_keys = "".join(f"{k}, " for k in key_cols)
        group = f" GROUP BY {', '.join(key_cols)}" if key_cols else ""
        sql = (
            f"SELECT {select_keys}count(*)::BIGINT, sum(h)::HUGEINT, bit_xor(h) "
            f"FROM (SELECT {select_keys}{self._hash_sql} AS h FROM __batch){group}"
        )
        self._con.register("__batch", rel)
        try:
            rows = self._con.sql(sql).fetchall()
        finally:
            self._con.unregister("__batch")
        n = len(key_cols)
        return [
            (tuple(r[:n]), int(r[n]), int(r[n + 1] or 0) & _MASK64, int(r[n + 2] or 0) & _MASK64)
            for r in rows
            if int(r[n])
        ]


def digest_batches(batches: Iterable[pa.RecordBatch], field_ids: Sequence[int] | None = None) -> Digest:
    """Order-independent digest of the rows of ``batches``.

    With ``field_ids``, only those columns are hashed, in ascending field-id order (columns are found
    by their ``PARQUET:field_id`` metadata, as yielded by ``iter_table_batches``); otherwise every
    column is hashed in batch order. Batches are processed one at a time.
    """
    count = 0
    total = 0
    xor = 0
    with RowHasher(field_ids) as hasher:
        for batch in batches:
            if isinstance(batch, pa.Table):
                raise TypeError("digest_batches takes RecordBatches, not a Table (use to_batches())")
            for _, n, s, x in hasher.grouped(batch):
                count += n
                total = (total + s) & _MASK64
                xor ^= x
    return Digest(count=count, sum=total, xor=xor & _MASK64, library=_library())


def table_digest(table: Table, snapshot_id: int | None, schema: Schema | None = None) -> Digest:
    """Digest of ``table`` at ``snapshot_id`` read with the independent reader, columns by field id."""
    schema = schema if schema is not None else table.schema()
    return digest_batches(
        iter_table_batches(table, snapshot_id, schema),
        field_ids=[f.field_id for f in schema.fields],
    )


# --------------------------------------------------------------------------------------------------
# Per-partition digests (level 4)
# --------------------------------------------------------------------------------------------------


@dataclass
class PartitionDigests:
    """Digests of one table side per partition of the current spec, and rows found in the wrong partition."""

    digests: dict[str, Digest]
    misplaced: list[dict[str, Any]]  # {"file", "registered", "belongs", "rows"}: rows whose values say otherwise
    files: int
    rows: int
    bytes: int  # data-file bytes read
    scanned_files: int = 0  # files DuckDB's Parquet reader read itself (the rest went through our reader)

    def total(self) -> Digest:
        """The whole-table digest (digests of disjoint row sets fold by count, sum and xor)."""
        count = total = xor = 0
        for d in self.digests.values():
            count += d.count
            total = (total + d.sum) & _MASK64
            xor ^= d.xor
        return Digest(count, total, xor, _library())


# One data file's contribution: its task, {label: [count, sum, xor]}, {wrong label: rows}, rows.
FileDigest: TypeAlias = tuple[DataFileTask, dict[str, list[int]], dict[str, int], int]


def _file_digests(
    hasher: RowHasher,
    files: SnapshotFiles,
    task: DataFileTask,
    schema: Schema,
    spec: PartitionSpec,
    check_placement: bool,
    batch_rows: int,
) -> tuple[dict[str, list[int]], dict[str, int], int]:
    from icebridge.validation.partitions import file_label, row_partition_keys

    registered = file_label(files.metadata, task.data_file) if check_placement else None
    groups = (
        group
        for batch in files.read(task, schema, batch_rows)
        for group in hasher.grouped(batch, row_partition_keys(batch, spec, schema))
    )
    return _label_groups(groups, spec, schema, registered, {})


def _fold(acc: dict[str, list[int]], label: str, n: int, s: int, x: int) -> None:
    slot = acc.setdefault(label, [0, 0, 0])
    slot[0] += n
    slot[1] = (slot[1] + s) & _MASK64
    slot[2] ^= x


def _label_groups(
    groups: Iterable[tuple[tuple[Any, ...], int, int, int]],
    spec: PartitionSpec,
    schema: Schema,
    registered: str | None,
    labels: dict[tuple[Any, ...], str],
) -> tuple[dict[str, list[int]], dict[str, int], int]:
    """One file's (partition key, count, sum, xor) groups as per-label digests, rows under a wrong label, rows.

    ``registered`` is the file's label in the manifest (None: not checked); ``labels`` caches key -> label.
    """
    from icebridge.validation.partitions import partition_label

    acc: dict[str, list[int]] = {}
    wrong: dict[str, int] = {}
    rows = 0
    for key, n, s, x in groups:
        label = labels.get(key)
        if label is None:
            label = labels[key] = partition_label(spec, schema, key)
        _fold(acc, label, n, s, x)
        rows += n
        if registered is not None and label != registered:
            wrong[label] = wrong.get(label, 0) + n
    return acc, wrong, rows


def partition_digests(
    table: Table,
    snapshot_id: int | None,
    schema: Schema,
    spec: PartitionSpec,
    workers: int = 2,
    files: SnapshotFiles | None = None,
    only: Callable[[DataFileTask], bool] | None = None,
    batch_rows: int = 131072,
    reader: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> PartitionDigests:
    """Digest of every partition of ``table`` at ``snapshot_id``, partitions computed per row with ``spec``.

    Rows are projected onto ``schema`` by field id (so both sides hash the same columns), and each row's
    partition is computed with ``spec``'s transforms, so files written under older specs fall into the
    current partitions. A data file registered in the manifest under one partition but holding rows of
    another is reported in ``misplaced`` (queries pruning by partition would miss those rows). ``only``
    restricts the files.

    With ``reader="auto"``, files DuckDB's Parquet reader can read exactly as Iceberg means them are
    digested there in one decode-partition-hash pipeline (:mod:`icebridge.validation.parquet_scan`); the
    others, and every file with ``reader="arrow"``, are read by the independent reader and hashed batch
    by batch, ``workers`` files at a time. Both give the same hashes.

    ``progress`` gets ``(files, bytes)`` increments as data files are decoded (bytes as the manifests
    record them): per chunk of files from DuckDB's scan, per file from the independent reader's worker
    threads. Every file is counted once, whichever reader decoded it.

    Raises:
        ValidationError: a manifest or data file cannot be read.
    """
    files = files if files is not None else SnapshotFiles(table, snapshot_id)
    tasks = [t for t in files.tasks if only is None or only(t)]
    results, scanned = file_digests(files, tasks, schema, spec, workers, batch_rows, reader, progress)
    return merge_file_digests(files, tasks, results, scanned)


def file_digests(
    files: SnapshotFiles,
    tasks: Sequence[DataFileTask],
    schema: Schema,
    spec: PartitionSpec,
    workers: int = 2,
    batch_rows: int = 131072,
    reader: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[FileDigest], int]:
    """Each of ``tasks``' contribution to :func:`partition_digests` (in no particular order), and how many of
    them DuckDB's Parquet scan read (the first ones of the list).

    The per-file work of level 4, run here by :func:`partition_digests` and on the Spark executors by
    ``validation.spark_exec``; :func:`merge_file_digests` folds the contributions of one side, wherever
    they were computed, into its :class:`PartitionDigests`.

    Raises:
        ValidationError: a manifest or data file cannot be read.
    """
    from icebridge.validation.partitions import file_label, same_fields

    if reader not in ("auto", "arrow"):
        raise ValueError(f"reader must be 'auto' or 'arrow', not {reader!r}")
    own_spec = files.metadata.spec()
    check = same_fields(own_spec, spec) and [f.name for f in own_spec.fields] == [f.name for f in spec.fields]

    results: list[FileDigest] = []
    general = list(tasks)
    plan = scan_plan(schema, spec) if reader == "auto" and tasks else None
    if plan is not None:
        import duckdb

        con = duckdb.connect()
        try:
            scannable, general = eligible(con, plan, tasks, Locator(files.io))
            labels: dict[tuple[Any, ...], str] = {}
            for fr in scan_digests(
                con, plan, scannable, workers, general.extend, files.io, files.equality_keys, progress
            ):
                registered = file_label(files.metadata, fr.task.data_file) if check else None
                groups = ((key, n, s, x) for key, (n, s, x) in fr.keys.items())
                results.append((fr.task, *_label_groups(groups, spec, schema, registered, labels)))
        finally:
            con.close()
    scanned = len(results)

    field_ids = [f.field_id for f in schema.fields]
    local = threading.local()
    hashers: list[RowHasher] = []
    lock = threading.Lock()

    def one(task: DataFileTask) -> FileDigest:
        # one DuckDB connection per worker thread, reused for every file it reads
        hasher = getattr(local, "hasher", None)
        if hasher is None:
            hasher = local.hasher = RowHasher(field_ids)
            with lock:
                hashers.append(hasher)
        digested = _file_digests(hasher, files, task, schema, spec, check, batch_rows)
        if progress is not None:
            progress(1, task.data_file.file_size_in_bytes)
        return (task, *digested)

    try:
        results.extend(_run_general(sorted(general, key=lambda t: t.data_file.file_path), workers, one))
    finally:
        for h in hashers:
            h.close()
    return results, scanned


def _run_general(
    tasks: list[DataFileTask], workers: int, one: Callable[[DataFileTask], FileDigest]
) -> list[FileDigest]:
    if not tasks:
        return []
    out: list[FileDigest] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="icebridge-digest") as pool:
        futures = [pool.submit(one, t) for t in tasks]
        try:
            for fut in as_completed(futures):
                out.append(fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return out


def merge_file_digests(
    files: SnapshotFiles, tasks: Sequence[DataFileTask], results: Iterable[FileDigest], scanned: int
) -> PartitionDigests:
    """One side's :class:`PartitionDigests` from its files' contributions (:func:`file_digests`), ``scanned``
    of them read by DuckDB's scan."""
    from icebridge.validation.partitions import file_label

    acc: dict[str, list[int]] = {}
    misplaced: list[dict[str, Any]] = []
    rows = 0
    for task, part, wrong, n in results:
        rows += n
        for label, (c, s, x) in part.items():
            _fold(acc, label, c, s, x)
        if wrong:
            registered = file_label(files.metadata, task.data_file)
            for label, count in sorted(wrong.items()):
                misplaced.append(
                    {"file": task.data_file.file_path, "registered": registered, "belongs": label, "rows": count}
                )
    library = _library()
    digests = {label: Digest(c, s, x, library) for label, (c, s, x) in sorted(acc.items())}
    size = sum(t.data_file.file_size_in_bytes for t in tasks)
    misplaced.sort(key=lambda m: (m["file"], m["belongs"]))
    return PartitionDigests(
        digests=digests, misplaced=misplaced, files=len(tasks), rows=rows, bytes=size, scanned_files=scanned
    )
