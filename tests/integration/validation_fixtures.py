"""Tables for the validation tests: a source written by PyIceberg and destinations written file by file.

The source is an ordinary PyIceberg append. A destination is written here with plain PyArrow, one
Parquet file per group of rows, each registered under the partition this module says (normally the
partition its rows belong to) with statistics taken from the file's footer, so a test can reorder
rows, split them differently, or corrupt them in any way before the destination is committed.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    schema_to_pyarrow,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from icebridge.engines import strategy_spec

UTC = dt.UTC
DAY0 = dt.datetime(2024, 5, 1, tzinfo=UTC)

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "i", IntegerType(), required=False),
    NestedField(3, "f", DoubleType(), required=False),
    NestedField(4, "dec", DecimalType(10, 2), required=False),
    NestedField(5, "s", StringType(), required=False),
    NestedField(6, "b", BinaryType(), required=False),
    NestedField(7, "ts", TimestamptzType(), required=False),
    NestedField(8, "d", DateType(), required=False),
    NestedField(
        9,
        "st",
        StructType(
            NestedField(13, "a", IntegerType(), required=False),
            NestedField(14, "t", StringType(), required=False),
        ),
        required=False,
    ),
    NestedField(10, "l", ListType(15, LongType(), element_required=False), required=False),
    NestedField(11, "m", MapType(16, StringType(), 17, LongType(), value_required=False), required=False),
    NestedField(12, "cat", StringType(), required=False),
)
# The same table without nested columns: DuckDB's Parquet reader digests its files (parquet_scan).
FLAT_SCHEMA = Schema(*(f for f in SCHEMA.fields if f.name not in ("st", "l", "m")))
SPEC = PartitionSpec(
    PartitionField(source_id=12, field_id=1000, transform=IdentityTransform(), name="cat"),
    PartitionField(source_id=7, field_id=1001, transform=DayTransform(), name="ts_day"),
)
CATS = ("a", "b", "c")
N_ROWS = 60


def base_rows() -> list[dict[str, Any]]:
    """Sixty rows over six partitions (3 categories x 2 days), with nulls, NaN, zeros and nested values."""
    rows = []
    for k in range(N_ROWS):
        rows.append(
            {
                "id": k,
                "i": k * 3 if k % 7 else 0,
                "f": float("nan") if k == 11 else (0.0 if k % 10 == 0 else k / 4),
                "dec": Decimal(k * 37 % 1000) / 100,
                "s": None if k % 9 == 0 else f"name-{k}",
                "b": bytes([k % 256, 0, 7]),
                "ts": DAY0 + dt.timedelta(hours=k * 4 % 48, minutes=k),
                "d": dt.date(2020, 1, 1) + dt.timedelta(days=k * 11),
                "st": None if k % 13 == 0 else {"a": k, "t": f"t{k}"},
                "l": None if k % 17 == 0 else [k, k + 1, k + 2],
                "m": None if k % 19 == 0 else [("k", k), ("z", -k)],
                "cat": CATS[k % 3],
            }
        )
    return rows


def partition_of(row: dict[str, Any]) -> tuple[str, int]:
    """(cat, days since epoch of ts): the row's partition tuple under SPEC."""
    days = (row["ts"].astimezone(UTC).date() - dt.date(1970, 1, 1)).days
    return row["cat"], days


def label_of(row: dict[str, Any]) -> str:
    """The partition label the validator uses for the row's partition."""
    cat, days = partition_of(row)
    return f"cat={cat}/ts_day={dt.date(1970, 1, 1) + dt.timedelta(days=days)}"


def traits(strategy: str) -> dict[str, Any]:
    """What validation is told of a copy made with ``strategy``, as the runner tells it (``**traits(s)``)."""
    spec = strategy_spec(strategy)
    return {"byte_copy": spec.byte_copy, "default_levels": spec.validation_levels}


def new_catalog(root: Path, name: str = "cat") -> SqlCatalog:
    """A SQL catalog on SQLite under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(name, uri=f"sqlite:///{root}/{name}.db", warehouse=f"file://{root}/{name}-warehouse")


def create_table(
    catalog: SqlCatalog, name: str, properties: dict[str, str] | None = None, schema: Schema = SCHEMA
) -> Table:
    """An empty table of ``schema`` (default SCHEMA) partitioned by SPEC in namespace ``ns``."""
    catalog.create_namespace_if_not_exists("ns")
    return catalog.create_table(("ns", name), schema=schema, partition_spec=SPEC, properties=properties or {})


def arrow_of(table: Table, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table in the table's schema (field ids in the metadata)."""
    return pa.Table.from_pylist(list(rows), schema=schema_to_pyarrow(table.schema()))


def make_source(root: Path, rows: Sequence[dict[str, Any]] | None = None, schema: Schema = SCHEMA) -> Table:
    """The source: ``rows`` (default :func:`base_rows`) appended by PyIceberg's own writer."""
    table = create_table(new_catalog(root, "src"), "source", {"comment": "validation source"}, schema)
    table.append(arrow_of(table, rows if rows is not None else base_rows()))
    return table


def write_data_file(table: Table, rows: Sequence[dict[str, Any]], partition: tuple[Any, ...]) -> DataFile:
    """Write ``rows`` as one Parquet file under the table's data directory and describe it for ``partition``."""
    arrow = arrow_of(table, rows)
    folder = Path(table.location().removeprefix("file://")) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.parquet"
    pq.write_table(arrow, path)
    metadata = pq.read_metadata(path)
    stats = data_file_statistics_from_parquet_metadata(
        parquet_metadata=metadata,
        stats_columns=compute_statistics_plan(table.schema(), table.metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(table.schema()),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=f"file://{path}",
        file_format=FileFormat.PARQUET,
        partition=Record(*partition),
        file_size_in_bytes=path.stat().st_size,
        sort_order_id=None,
        spec_id=table.spec().spec_id,
        equality_ids=None,
        key_metadata=None,
        **stats.to_serialized_dict(),
    )


def commit_files(table: Table, files: Sequence[DataFile]) -> Table:
    """Append ``files`` to ``table`` in one snapshot."""
    with table.transaction() as tx:
        with tx.update_snapshot().fast_append() as append:
            for f in files:
                append.append_data_file(f)
    return table


def make_destination(
    root: Path,
    rows: Sequence[dict[str, Any]] | None = None,
    *,
    split: int = 1,
    reverse: bool = False,
    placement: Callable[[dict[str, Any]], tuple[Any, ...]] = partition_of,
    name: str = "destination",
    schema: Schema = SCHEMA,
) -> Table:
    """A destination holding ``rows``, ``split`` files per partition, registered where ``placement`` says."""
    table = create_table(new_catalog(root, "dst"), name, {"comment": "validation source"}, schema)
    rows = list(rows if rows is not None else base_rows())
    if reverse:
        rows.reverse()
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(placement(row), []).append(row)
    files = []
    for key, members in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        for part in range(split):
            chunk = members[part::split]
            if chunk:
                files.append(write_data_file(table, chunk, key))
    return commit_files(table, files)


def changed(rows: Sequence[dict[str, Any]], index: int, **values: Any) -> list[dict[str, Any]]:
    """A deep copy of ``rows`` with row ``index`` updated."""
    out = copy.deepcopy(list(rows))
    out[index].update(values)
    return out


def data_paths(table: Table) -> list[str]:
    """Local paths of the table's current data files."""
    return sorted(t.file.file_path.removeprefix("file://") for t in table.scan().plan_files())


_DATA_FILE_FIELDS = (
    "content",
    "file_format",
    "partition",
    "record_count",
    "file_size_in_bytes",
    "column_sizes",
    "value_counts",
    "null_value_counts",
    "nan_value_counts",
    "lower_bounds",
    "upper_bounds",
    "key_metadata",
    "split_offsets",
    "equality_ids",
    "sort_order_id",
    "spec_id",
)


def relocated(df: DataFile, path: str, **changes: Any) -> DataFile:
    """The manifest entry ``df`` describing a file at ``path`` (other facts kept unless changed)."""
    facts = {name: getattr(df, name) for name in _DATA_FILE_FIELDS}
    facts.update(changes)
    return DataFile.from_args(file_path=path, **facts)


def make_byte_copy(root: Path, source: Table, name: str = "copy") -> Table:
    """A destination whose data files are byte copies of the source's (same base names, other directory)."""
    table = create_table(new_catalog(root, "fc"), name, {"comment": "validation source"})
    folder = Path(table.location().removeprefix("file://")) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for task in source.scan().plan_files():
        src = Path(task.file.file_path.removeprefix("file://"))
        dst = folder / src.name
        shutil.copyfile(src, dst)
        files.append(relocated(task.file, f"file://{dst}"))
    return commit_files(table, files)


def replace_file(table: Table, old_path: str, new_file: DataFile) -> Table:
    """Swap one data file of ``table`` for another in one overwrite snapshot."""
    with table.transaction() as tx:
        with tx.update_snapshot().overwrite() as overwrite:
            for task in table.scan().plan_files():
                if task.file.file_path.removeprefix("file://") == old_path.removeprefix("file://"):
                    overwrite.delete_data_file(task.file)
            overwrite.append_data_file(new_file)
    return table
