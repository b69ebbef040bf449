"""Reading a table through Spark and through PyIceberg into one comparable form.

Values are normalised by the Iceberg type, so a Spark ``Row`` and a PyArrow ``dict`` of the same struct,
a Spark ``dict`` and a PyArrow list of pairs of the same map, or a local-time Spark timestamp and a UTC
PyArrow timestamp of the same instant compare equal, and nothing else does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import BinaryType, IcebergType, ListType, MapType, StructType, TimestamptzType

from icebridge.engines.spark_sql import quote_identifier

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def canon(value: Any, field_type: IcebergType) -> Any:
    """A hashable, engine-independent form of one value of ``field_type``."""
    if value is None:
        return None
    if isinstance(field_type, StructType):
        members = value.asDict(recursive=False) if hasattr(value, "asDict") else dict(value)
        return tuple(canon(members[f.name], f.field_type) for f in field_type.fields)
    if isinstance(field_type, ListType):
        return tuple(canon(v, field_type.element_type) for v in value)
    if isinstance(field_type, MapType):
        pairs = value.items() if isinstance(value, dict) else value
        return tuple(
            sorted(
                ((canon(k, field_type.key_type), canon(v, field_type.value_type)) for k, v in pairs),
                key=repr,
            )
        )
    if isinstance(field_type, TimestamptzType):
        # Spark hands back naive local time, PyArrow aware UTC: compare the instant
        return (value.astimezone(dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(field_type, BinaryType):
        return bytes(value)
    return value


def canon_rows(rows: list[Any], schema: Schema) -> list[tuple[Any, ...]]:
    """Rows (Spark ``Row`` objects or PyArrow dicts) normalised and sorted."""
    out = []
    for row in rows:
        members = row.asDict(recursive=False) if hasattr(row, "asDict") else row
        out.append(tuple(canon(members[f.name], f.field_type) for f in schema.fields))
    return sorted(out, key=repr)


def spark_rows(spark: Any, table: str, schema: Schema, snapshot_id: int | None = None) -> list[tuple[Any, ...]]:
    """The table as Spark reads it (deletes applied by Spark), at ``snapshot_id`` or current."""
    columns = ", ".join(quote_identifier(f.name) for f in schema.fields)
    version = f" VERSION AS OF {snapshot_id}" if snapshot_id is not None else ""
    return canon_rows(spark.sql(f"SELECT {columns} FROM {table}{version}").collect(), schema)


def pyiceberg_rows(table: Table, schema: Schema, snapshot_id: int | None = None) -> list[tuple[Any, ...]]:
    """The table as PyIceberg reads it (deletes applied by PyIceberg)."""
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    return canon_rows(data.to_pylist(), schema)
