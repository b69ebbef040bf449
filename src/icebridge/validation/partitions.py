"""Partition labels shared by every validation level.

Levels 2 (manifests), 4 (row digests) and 5 (drill-down) must name a partition the same way, whether
its value comes from a manifest entry (a file's partition tuple) or is computed from a row with the
current spec's transforms. A label is the human form Iceberg uses in paths: ``day=2024-01-03/bucket=1``;
an unpartitioned table has one partition, :data:`UNPARTITIONED`.

A data file written under an older partition spec has no partition tuple in the current spec; such
files are labelled from their rows (level 4) or compared at table level (level 2, :data:`WHOLE_TABLE`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata

__all__ = [
    "UNPARTITIONED",
    "WHOLE_TABLE",
    "file_label",
    "partition_label",
    "row_partition_keys",
    "same_fields",
]

UNPARTITIONED = "(unpartitioned)"
WHOLE_TABLE = "(whole table)"
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_TZ = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def same_fields(a: PartitionSpec, b: PartitionSpec) -> bool:
    """True when two specs partition alike (same source columns and transforms, in order)."""
    return [(f.source_id, str(f.transform)) for f in a.fields] == [(f.source_id, str(f.transform)) for f in b.fields]


def _iceberg_value(value: Any) -> Any:
    """A value as Iceberg stores it in a partition tuple (days, microseconds, ...), from a Python/DuckDB value."""
    if isinstance(value, dt.datetime):
        epoch = _EPOCH_TZ if value.tzinfo is not None else _EPOCH
        delta = value - epoch
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days
    if isinstance(value, dt.time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def partition_label(spec: PartitionSpec, schema: Schema, values: Sequence[Any]) -> str:
    """The human label of one partition tuple of ``spec`` (values in Iceberg's partition representation)."""
    if not spec.fields:
        return UNPARTITIONED
    parts = []
    for pf, raw in zip(spec.fields, values, strict=True):
        source_type = schema.find_field(pf.source_id).field_type
        value = _iceberg_value(raw)
        if value is None:
            text = "null"
        else:
            try:
                if isinstance(value, bytes) and str(pf.transform) == "identity" and str(source_type) == "uuid":
                    value = uuid.UUID(bytes=value)
                text = pf.transform.to_human_string(pf.transform.result_type(source_type), value)
            except Exception:  # noqa: BLE001 - a label must never stop a validation
                text = repr(value)
        parts.append(f"{pf.name}={text}")
    return "/".join(parts)


def file_label(metadata: TableMetadata, data_file: DataFile) -> str | None:
    """Label of a data file's partition in the current spec; None if it was written under another layout."""
    current = metadata.spec()
    specs = metadata.specs()
    spec = specs.get(data_file.spec_id)
    if spec is None or not same_fields(spec, current):
        return None
    record = data_file.partition
    values = [record[i] for i in range(len(spec.fields))] if spec.fields else []
    return partition_label(current, metadata.schema(), values)


def _column_by_accessor(batch: pa.RecordBatch, schema: Schema, field_id: int) -> pa.Array:
    """The (possibly nested) column ``field_id`` of a batch laid out as ``schema`` (struct nulls propagated)."""
    accessor = schema.accessor_for_field(field_id)
    arr: Any = batch.column(accessor.position)
    inner = accessor.inner
    while inner is not None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.flatten()[inner.position]
        inner = inner.inner
    return arr  # type: ignore[no-any-return]


def row_partition_keys(batch: pa.RecordBatch, spec: PartitionSpec, schema: Schema) -> list[pa.Array]:
    """The current spec's partition values of every row, one Arrow array per partition field (vectorised)."""
    keys = []
    for pf in spec.fields:
        source_type = schema.find_field(pf.source_id).field_type
        column = _column_by_accessor(batch, schema, pf.source_id)
        keys.append(pf.transform.pyarrow_transform(source_type)(column))
    return keys
