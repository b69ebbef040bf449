"""Level 5: drill-down. For partitions that mismatched, find the rows present on one side only.

Two passes over the files of the mismatching partitions only, on each side:

1. every row's 64-bit hash (the level-4 row hash) with the partition it is in; the multiset
   difference of (partition, hash) between the sides gives how many rows each side has that the
   other lacks, per partition, and which hashes to fetch (at most ``sample_rows`` per side);
2. the rows with those hashes are read again and returned as JSON-safe dictionaries.

A row's partition is the one its file is registered under in the manifest (so a row moved into a
file of another partition shows as missing from one and extra in the other); rows of files written
under an older spec get the partition their values map to. A source-only row and a destination-only
row that agree on most columns are paired, naming the columns that changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from icebridge.validation.digest import RowHasher
from icebridge.validation.partitions import WHOLE_TABLE, file_label, partition_label, row_partition_keys
from icebridge.validation.values import to_json

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema

    from icebridge.validation.reader import DataFileTask, SnapshotFiles

__all__ = ["DrillDown", "drill_down"]


@dataclass
class DrillDown:
    """Rows on one side only, per mismatching partition, with a capped sample of them."""

    partitions: list[dict[str, Any]]  # {"partition", "source_only", "destination_only"}
    source_only: list[dict[str, Any]]  # {"partition", "row"}
    destination_only: list[dict[str, Any]]
    # {"source_partition", "destination_partition", "columns", "source", "destination", "row"}: the values of the
    # changed columns on each side, and the whole source row; no column changed means the row moved partition
    changed: list[dict[str, Any]]
    sample_rows: int

    @property
    def differing_rows(self) -> int:
        """Rows found on one side only, over all partitions looked at."""
        return sum(p["source_only"] + p["destination_only"] for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for validation details."""
        return {
            "partitions": self.partitions,
            "source_only": self.source_only,
            "destination_only": self.destination_only,
            "changed": self.changed,
            "sample_rows": self.sample_rows,
        }


def _selected(files: SnapshotFiles, wanted: Collection[str]) -> list[tuple[DataFileTask, str | None]]:
    """Files that may hold rows of ``wanted`` partitions, each with its registered label (None: per row)."""
    out: list[tuple[DataFileTask, str | None]] = []
    whole = WHOLE_TABLE in wanted
    for task in files.tasks:
        if whole:
            out.append((task, WHOLE_TABLE))
            continue
        label = file_label(files.metadata, task.data_file)
        if label is None:
            out.append((task, None))
        elif label in wanted:
            out.append((task, label))
    return out


def _labelled_batches(
    files: SnapshotFiles,
    schema: Schema,
    spec: PartitionSpec,
    wanted: Collection[str],
    hasher: RowHasher,
    progress: Callable[[int, int], None] | None,
) -> Iterator[tuple[pa.RecordBatch, pa.Array, pa.Array]]:
    """(batch, row hashes, row labels) of the rows of ``wanted`` partitions only; ``progress`` per file read."""
    cache: dict[tuple[Any, ...], str] = {}
    for task, label in _selected(files, wanted):
        yield from _file_batches(files, task, label, schema, spec, wanted, hasher, cache)
        if progress is not None:
            progress(1, task.data_file.file_size_in_bytes)


def _file_batches(
    files: SnapshotFiles,
    task: DataFileTask,
    label: str | None,
    schema: Schema,
    spec: PartitionSpec,
    wanted: Collection[str],
    hasher: RowHasher,
    cache: dict[tuple[Any, ...], str],
) -> Iterator[tuple[pa.RecordBatch, pa.Array, pa.Array]]:
    """(batch, row hashes, row labels) of one file's rows of ``wanted`` partitions (its own label, or per row)."""
    for batch in files.read(task, schema):
        if batch.num_rows == 0:
            continue
        if label is not None:
            labels = pa.repeat(pa.scalar(label, pa.string()), batch.num_rows)
        else:
            # a file under an older spec: each row's partition from its values (Python per row, but
            # drill-down reads only suspect partitions)
            keys = [k.to_pylist() for k in row_partition_keys(batch, spec, schema)]
            names = []
            for key in zip(*keys, strict=True) if keys else [()] * batch.num_rows:
                text = cache.get(key)
                if text is None:
                    text = cache[key] = partition_label(spec, schema, key)
                names.append(text)
            keep = pa.array([n in wanted for n in names], pa.bool_())
            if not pc.any(keep).as_py():
                continue
            batch = batch.filter(keep)
            labels = pa.array([n for n in names if n in wanted], pa.string())
        yield batch, hasher.hashes(batch), labels


def _hash_table(
    files: SnapshotFiles,
    schema: Schema,
    spec: PartitionSpec,
    wanted: Collection[str],
    field_ids: Sequence[int],
    progress: Callable[[int, int], None] | None,
) -> pa.Table:
    parts: list[pa.Table] = []
    with RowHasher(field_ids) as hasher:
        for _, hashes, labels in _labelled_batches(files, schema, spec, wanted, hasher, progress):
            parts.append(pa.table({"p": labels, "h": hashes.cast(pa.uint64())}))
    if not parts:
        return pa.table({"p": pa.array([], pa.string()), "h": pa.array([], pa.uint64())})
    return pa.concat_tables(parts)


def _difference(
    src: pa.Table, dst: pa.Table, sample_rows: int
) -> tuple[dict[str, list[int]], list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Multiset difference of (partition, hash) between the sides.

    Returns the rows on one side only per partition (``[source only, destination only]``) and, per
    side, at most ``sample_rows`` (partition, hash, surplus) entries to fetch, in a stable order.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.register("src", src)
        con.register("dst", dst)
        con.execute(
            """
            CREATE TEMP TABLE diff AS
            WITH s AS (SELECT p, h, count(*) AS c FROM src GROUP BY p, h),
                 d AS (SELECT p, h, count(*) AS c FROM dst GROUP BY p, h)
            SELECT coalesce(s.p, d.p) AS p, coalesce(s.h, d.h) AS h,
                   coalesce(s.c, 0) - coalesce(d.c, 0) AS surplus
            FROM s FULL OUTER JOIN d ON s.p = d.p AND s.h = d.h
            WHERE coalesce(s.c, 0) <> coalesce(d.c, 0)
            """
        )
        totals = {
            str(p): [int(a), int(b)]
            for p, a, b in con.sql(
                "SELECT p, sum(greatest(surplus, 0)), sum(greatest(-surplus, 0)) FROM diff GROUP BY p"
            ).fetchall()
        }
        sample = f"ORDER BY p, h LIMIT {int(sample_rows)}"
        source_side = [
            (str(p), int(h), int(n))
            for p, h, n in con.sql(f"SELECT p, h, surplus FROM diff WHERE surplus > 0 {sample}").fetchall()
        ]
        destination_side = [
            (str(p), int(h), int(n))
            for p, h, n in con.sql(f"SELECT p, h, -surplus FROM diff WHERE surplus < 0 {sample}").fetchall()
        ]
        return totals, source_side, destination_side
    finally:
        con.close()


def _budget(entries: list[tuple[str, int, int]], cap: int) -> dict[tuple[str, int], int]:
    """How many rows of each (partition, hash) to fetch, ``cap`` in all."""
    out: dict[tuple[str, int], int] = {}
    left = cap
    for p, h, n in entries:
        if left <= 0:
            break
        take = min(n, left)
        out[(p, h)] = take
        left -= take
    return out


def _fetch(
    files: SnapshotFiles,
    schema: Schema,
    spec: PartitionSpec,
    wanted: dict[tuple[str, int], int],
    field_ids: Sequence[int],
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    """Read the rows whose (partition, hash) is in ``wanted`` (as many of each as asked)."""
    if not wanted:
        return []
    remaining = dict(wanted)
    partitions = {p for p, _ in wanted}
    value_set = pa.array(sorted({h for _, h in wanted}), pa.uint64())
    names = [f.name for f in schema.fields]
    found: list[dict[str, Any]] = []
    with RowHasher(field_ids) as hasher:
        for batch, hashes, labels in _labelled_batches(files, schema, spec, partitions, hasher, progress):
            hit = pc.is_in(hashes.cast(pa.uint64()), value_set=value_set)
            if not pc.any(hit).as_py():
                continue
            indices = pc.indices_nonzero(hit).to_pylist()
            rows = batch.take(pa.array(indices, pa.int64())).to_pylist()
            hit_hashes = pc.take(hashes, pa.array(indices, pa.int64())).to_pylist()
            hit_labels = pc.take(labels, pa.array(indices, pa.int64())).to_pylist()
            for row, h, label in zip(rows, hit_hashes, hit_labels, strict=True):
                key = (label, int(h))
                if remaining.get(key, 0) > 0:
                    remaining[key] -= 1
                    found.append({"partition": label, "row": {n: to_json(row[n]) for n in names}})
            if not any(remaining.values()):
                break
    return found


def _pair(source_only: list[dict[str, Any]], destination_only: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair rows that agree on most columns: the columns they differ in are what changed."""
    changed: list[dict[str, Any]] = []
    taken: set[int] = set()
    for s in source_only:
        srow = s["row"]
        best, best_equal = -1, -1
        for j, d in enumerate(destination_only):
            if j in taken:
                continue
            equal = sum(1 for k in srow if json.dumps(srow[k]) == json.dumps(d["row"].get(k)))
            if equal > best_equal:
                best, best_equal = j, equal
        # an identical row in another partition pairs too: it moved (no column changed)
        if best < 0 or best_equal * 2 < len(srow):
            continue
        taken.add(best)
        d = destination_only[best]
        columns = [k for k in srow if json.dumps(srow[k]) != json.dumps(d["row"].get(k))]
        changed.append(
            {
                "source_partition": s["partition"],
                "destination_partition": d["partition"],
                "columns": columns,
                "source": {k: srow[k] for k in columns},
                "destination": {k: d["row"].get(k) for k in columns},
                "row": srow,
            }
        )
    return changed


def drill_down(
    source: SnapshotFiles,
    destination: SnapshotFiles,
    schema: Schema,
    spec: PartitionSpec,
    partitions: Collection[str],
    sample_rows: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> DrillDown:
    """Rows on one side only in ``partitions`` (labels as levels 2 and 4 give them), with samples.

    ``sample_rows`` caps the rows fetched per side. Only the files of the named partitions are read
    (all files when :data:`WHOLE_TABLE` is named, and files under older specs, filtered per row).
    ``progress`` gets ``(1, bytes)`` for every data file read whole (bytes as the manifests record them;
    the second pass stops once it has its sample, so its last file may not count).

    Raises:
        ValidationError: a file cannot be read.
    """
    wanted = set(partitions)
    field_ids = [f.field_id for f in schema.fields]
    src = _hash_table(source, schema, spec, wanted, field_ids, progress)
    dst = _hash_table(destination, schema, spec, wanted, field_ids, progress)
    per_partition, source_side, destination_side = _difference(src, dst, sample_rows)
    del src, dst
    want_src = _budget(source_side, sample_rows)
    want_dst = _budget(destination_side, sample_rows)
    source_rows = _fetch(source, schema, spec, want_src, field_ids, progress)
    destination_rows = _fetch(destination, schema, spec, want_dst, field_ids, progress)
    return DrillDown(
        partitions=[
            {"partition": p, "source_only": c[0], "destination_only": c[1]} for p, c in sorted(per_partition.items())
        ],
        source_only=source_rows,
        destination_only=destination_rows,
        changed=_pair(source_rows, destination_rows),
        sample_rows=sample_rows,
    )
