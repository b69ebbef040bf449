"""Level 2: metadata. Per-partition statistics from the manifests of both sides, no data file opened.

For every partition of the current spec, both sides' data files are summed: file and record counts,
and per column value, null and NaN counts and the minimum lower / maximum upper bound. What is
compared, and why:

* record, value, null and NaN counts: always, where both sides recorded them (a writer may leave a
  statistic out; a missing one is not compared rather than guessed);
* bounds: only for types whose bounds are exact (numbers, decimals, booleans, dates, times,
  timestamps). String and binary bounds may be truncated by the writer, so they are compared only
  file by file where the files are byte copies (:func:`compare_file_entries`);
* columns inside a list or map are not compared here: writers disagree on how repeated values are
  counted. Level 4 proves their content;
* file counts only for byte copies: a rewrite may split the rows differently;
* a partition with row-level delete files on one side only is not compared (manifest counts include
  the deleted rows); level 4 reads it with the deletes applied. With delete files on both sides (a
  byte copy), data and delete statistics are compared as they are.

Files written under an older partition spec carry no partition tuple of the current spec, and a
rewrite redistributes their rows over current partitions. When any live file of either side is under
a spec that partitions differently from the current one, the statistics are compared for the whole
table as one group (:data:`~icebridge.validation.partitions.WHOLE_TABLE`) and level 4, which computes
each row's partition, gives the per-partition comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import DataFileContent
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    PrimitiveType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from icebridge.validation.partitions import WHOLE_TABLE, file_label, same_fields
from icebridge.validation.values import to_json

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.schema import Schema

    from icebridge.validation.identity import FileMatch
    from icebridge.validation.reader import SnapshotFiles

__all__ = [
    "MAX_METRICS",
    "ColumnStats",
    "MetadataComparison",
    "PartitionStats",
    "SideStats",
    "collect",
    "compare",
    "compare_file_entries",
    "comparable_columns",
]

MAX_METRICS = 2000  # metric rows kept in the details (every mismatch is kept; matches up to this many)

_EXACT_BOUND_TYPES = (
    BooleanType,
    IntegerType,
    LongType,
    FloatType,
    DoubleType,
    DecimalType,
    DateType,
    TimeType,
    TimestampType,
    TimestamptzType,
)


def _exact_bounds(t: PrimitiveType) -> bool:
    if isinstance(t, _EXACT_BOUND_TYPES):
        return True
    return type(t).__name__ in ("TimestampNanoType", "TimestamptzNanoType")


def comparable_columns(schema: Schema) -> list[tuple[str, NestedField]]:
    """Primitive columns (dotted name, field) that are not inside a list or a map, in schema order."""
    out: list[tuple[str, NestedField]] = []

    def walk(prefix: str, fields: Iterable[NestedField]) -> None:
        for f in fields:
            name = f"{prefix}{f.name}"
            if isinstance(f.field_type, StructType):
                walk(name + ".", f.field_type.fields)
            elif isinstance(f.field_type, ListType | MapType):
                continue
            else:
                out.append((name, f))

    walk("", schema.fields)
    return out


@dataclass
class ColumnStats:
    """One column's statistics summed over the files of a partition; None where some file lacks them."""

    values: int | None = 0
    nulls: int | None = 0
    nans: int | None = 0
    lower: Any = None
    upper: Any = None
    bounds_known: bool = True


@dataclass
class PartitionStats:
    """Statistics of one partition on one side."""

    files: int = 0
    records: int = 0
    delete_files: int = 0
    delete_records: int = 0
    columns: dict[int, ColumnStats] = field(default_factory=dict)


@dataclass
class SideStats:
    """One side's per-partition statistics."""

    partitions: dict[str, PartitionStats]
    whole_table: bool  # partitions collapsed into one group (files under older specs)


def _decode(t: PrimitiveType, raw: bytes) -> Any:
    try:
        return from_bytes(t, raw)
    except Exception:  # noqa: BLE001 - a promoted column keeps its old width in older files
        if isinstance(t, LongType) and len(raw) == 4:
            return from_bytes(IntegerType(), raw)
        if isinstance(t, DoubleType) and len(raw) == 4:
            return from_bytes(FloatType(), raw)
        raise


def _add_file(stats: PartitionStats, df: DataFile, columns: list[tuple[str, NestedField]]) -> None:
    stats.files += 1
    stats.records += int(df.record_count)
    values = df.value_counts or {}
    nulls = df.null_value_counts or {}
    nans = df.nan_value_counts or {}
    lowers = df.lower_bounds or {}
    uppers = df.upper_bounds or {}
    for _, f in columns:
        c = stats.columns.setdefault(f.field_id, ColumnStats())
        fid = f.field_id
        c.values = c.values + int(values[fid]) if c.values is not None and fid in values else None
        c.nulls = c.nulls + int(nulls[fid]) if c.nulls is not None and fid in nulls else None
        is_float = isinstance(f.field_type, FloatType | DoubleType)
        if is_float:
            c.nans = c.nans + int(nans[fid]) if c.nans is not None and fid in nans else None
        else:
            c.nans = None
        if not c.bounds_known or not _exact_bounds(f.field_type):  # type: ignore[arg-type]
            c.bounds_known = False
            continue
        if fid in lowers and fid in uppers:
            try:
                lo = _decode(f.field_type, lowers[fid])  # type: ignore[arg-type]
                hi = _decode(f.field_type, uppers[fid])  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001
                c.bounds_known = False
                continue
            c.lower = lo if c.lower is None or lo < c.lower else c.lower
            c.upper = hi if c.upper is None or hi > c.upper else c.upper
            continue
        # no bounds: fine only if the file provably holds no non-null, non-NaN value in this column
        v, n = values.get(fid), nulls.get(fid)
        nan = nans.get(fid, 0 if not is_float else None)
        if v is None or n is None or nan is None or int(v) - int(n) - int(nan) != 0:
            c.bounds_known = False


def collect(files: SnapshotFiles, schema: Schema, whole_table: bool) -> SideStats:
    """Sum one side's manifest statistics per partition label (or for the whole table)."""
    columns = comparable_columns(schema)
    partitions: dict[str, PartitionStats] = {}
    for task in files.tasks:
        label = WHOLE_TABLE if whole_table else (file_label(files.metadata, task.data_file) or WHOLE_TABLE)
        _add_file(partitions.setdefault(label, PartitionStats()), task.data_file, columns)
    for ddf in files.delete_files():
        label = WHOLE_TABLE if whole_table else (file_label(files.metadata, ddf) or WHOLE_TABLE)
        p = partitions.setdefault(label, PartitionStats())
        p.delete_files += 1
        p.delete_records += int(ddf.record_count)
    return SideStats(partitions, whole_table)


def needs_whole_table(source: SnapshotFiles, destination: SnapshotFiles) -> bool:
    """True when per-partition statistics cannot be lined up (older specs, or specs that differ)."""
    if not same_fields(source.metadata.spec(), destination.metadata.spec()):
        return True
    for side in (source, destination):
        current = side.metadata.spec()
        specs = side.metadata.specs()
        for task in side.tasks:
            spec = specs.get(task.data_file.spec_id)
            if spec is None or not same_fields(spec, current):
                return True
    return False


@dataclass
class MetadataComparison:
    """The outcome of the per-partition metadata comparison."""

    mismatches: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    metrics_omitted: int
    skipped: list[dict[str, str]]
    partitions_compared: int
    whole_table: bool
    source_records: int
    destination_records: int

    @property
    def passed(self) -> bool:
        """No statistic differs."""
        return not self.mismatches

    def mismatching_partitions(self) -> list[str]:
        """Labels of the partitions where some statistic differs, sorted."""
        return sorted({m["partition"] for m in self.mismatches})


def compare(source: SideStats, destination: SideStats, schema: Schema, compare_file_counts: bool) -> MetadataComparison:
    """Compare two sides' statistics partition by partition (see the module docstring for what and why)."""
    columns = comparable_columns(schema)
    mismatches: list[dict[str, Any]] = []
    matches: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    compared = 0

    def metric(partition: str, name: str, s: Any, d: Any) -> None:
        row = {"partition": partition, "metric": name, "source": to_json(s), "destination": to_json(d)}
        if s == d:
            row["equal"] = True
            matches.append(row)
        else:
            row["equal"] = False
            mismatches.append(row)

    for label in sorted(source.partitions.keys() | destination.partitions.keys()):
        s = source.partitions.get(label)
        d = destination.partitions.get(label)
        if s is None or d is None:
            present = s or d
            assert present is not None
            metric(label, "records", s.records if s else None, d.records if d else None)
            continue
        if (s.delete_files > 0) != (d.delete_files > 0):
            side = "source" if s.delete_files else "destination"
            skipped.append(
                {
                    "partition": label,
                    "reason": f"row-level delete files on the {side} only; manifest counts include deleted rows",
                }
            )
            continue
        compared += 1
        metric(label, "records", s.records, d.records)
        if compare_file_counts:
            metric(label, "data files", s.files, d.files)
        if s.delete_files or d.delete_files:
            metric(label, "delete records", s.delete_records, d.delete_records)
        for name, f in columns:
            sc, dc = s.columns.get(f.field_id), d.columns.get(f.field_id)
            if sc is None or dc is None:
                continue
            for what, sv, dv in (
                ("values", sc.values, dc.values),
                ("nulls", sc.nulls, dc.nulls),
                ("NaNs", sc.nans, dc.nans),
            ):
                if sv is not None and dv is not None:
                    metric(label, f"{name} {what}", sv, dv)
            if sc.bounds_known and dc.bounds_known:
                metric(label, f"{name} lower bound", sc.lower, dc.lower)
                metric(label, f"{name} upper bound", sc.upper, dc.upper)
    kept = mismatches + matches[: max(0, MAX_METRICS - len(mismatches))]
    return MetadataComparison(
        mismatches=mismatches,
        metrics=kept,
        metrics_omitted=len(mismatches) + len(matches) - len(kept),
        skipped=skipped,
        partitions_compared=compared,
        whole_table=source.whole_table or destination.whole_table,
        source_records=sum(p.records for p in source.partitions.values()),
        destination_records=sum(p.records for p in destination.partitions.values()),
    )


def _entry_facts(df: DataFile) -> dict[str, Any]:
    def hexed(m: dict[int, bytes] | None) -> dict[str, str]:
        return {str(k): bytes(v).hex() for k, v in sorted((m or {}).items())}

    def counts(m: dict[int, int] | None) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted((m or {}).items())}

    return {
        # v1 manifests give the content as a plain int, v2 as the enum: compare them as one
        "content": DataFileContent(int(df.content)).name.lower(),
        "records": int(df.record_count),
        "bytes": int(df.file_size_in_bytes),
        "value counts": counts(df.value_counts),
        "null counts": counts(df.null_value_counts),
        "NaN counts": counts(df.nan_value_counts),
        "lower bounds": hexed(df.lower_bounds),
        "upper bounds": hexed(df.upper_bounds),
        "equality ids": sorted(df.equality_ids or []),
    }


def compare_file_entries(match: FileMatch, source: SnapshotFiles, destination: SnapshotFiles) -> dict[str, Any]:
    """For byte copies: every manifest entry's statistics (all bounds, strings included) against its copy's.

    Returns JSON-serialisable details: ``mismatches`` (one row per differing fact of a pair, with
    both partitions), ``missing`` / ``extra`` (files without a counterpart) and ``pairs`` compared.
    """
    mismatches: list[dict[str, Any]] = []
    for s, d in match.pairs:
        sf, df_ = _entry_facts(s), _entry_facts(d)
        s_label = file_label(source.metadata, s) or WHOLE_TABLE
        d_label = file_label(destination.metadata, d) or WHOLE_TABLE
        if s_label != d_label:
            mismatches.append(
                {
                    "file": s.file_path,
                    "destination file": d.file_path,
                    "fact": "partition",
                    "source": s_label,
                    "destination": d_label,
                    "partition": s_label,
                }
            )
        for key in sf:
            if sf[key] != df_[key]:
                mismatches.append(
                    {
                        "file": s.file_path,
                        "destination file": d.file_path,
                        "fact": key,
                        "source": sf[key],
                        "destination": df_[key],
                        "partition": s_label,
                    }
                )
    return {
        "pairs": len(match.pairs),
        "mismatches": mismatches,
        "missing": [
            {"file": f.file_path, "partition": file_label(source.metadata, f) or WHOLE_TABLE} for f in match.missing
        ],
        "extra": [
            {"file": f.file_path, "partition": file_label(destination.metadata, f) or WHOLE_TABLE} for f in match.extra
        ],
    }
