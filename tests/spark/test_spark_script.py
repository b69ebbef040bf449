"""The script ``plan --sql`` prints, run statement by statement on the real Spark."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform, TruncateTransform
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from icebridge.engines.spark_sql import quote_parts, script_statements
from icebridge.model import TableRef
from tests.spark.conftest import Estate
from tests.spark.oracle import spark_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=True),
    NestedField(2, "region", StringType(), required=False),
    NestedField(3, "name", StringType(), required=False, doc="it's a \\name"),
    NestedField(4, "at", TimestamptzType(), required=False),
    identifier_field_ids=[1],
)
SPEC = PartitionSpec(
    PartitionField(4, 1000, DayTransform(), "at_day"),
    PartitionField(1, 1001, BucketTransform(4), "id_bucket"),
    PartitionField(2, 1002, IdentityTransform(), "region"),
    PartitionField(3, 1003, TruncateTransform(2), "name_trunc"),
)
ORDER = SortOrder(SortField(1, IdentityTransform(), SortDirection.DESC, NullOrder.NULLS_LAST))


def rows(start: int, n: int) -> pa.Table:
    ids = range(start, start + n)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": pa.array([["eu", "us", None][i % 3] for i in ids], pa.string()),
            "name": pa.array([f"n{i}" for i in ids], pa.string()),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=5 * i) for i in ids],
                pa.timestamp("us", "UTC"),
            ),
        },
        schema=pa.schema(
            [
                pa.field("id", pa.int64(), nullable=False),
                pa.field("region", pa.string()),
                pa.field("name", pa.string()),
                pa.field("at", pa.timestamp("us", "UTC")),
            ]
        ),
    )


def source_table(est: Estate) -> Table:
    catalog = est.foreign.pyiceberg()
    catalog.create_namespace("sales")
    table = catalog.create_table(
        "sales.orders",
        SCHEMA,
        partition_spec=SPEC,
        sort_order=ORDER,
        properties={"write.parquet.row-group-limit": "5000"},
    )
    table.append(rows(0, 60))
    return table


def spark_name(ref: TableRef) -> str:
    return quote_parts((ref.catalog, *ref.namespace, ref.name))


def test_script_scaffolds_copies_and_syncs_in_spark(estate: Estate) -> None:
    source = source_table(estate)
    source_ref = TableRef(estate.foreign.name, ("sales",), "orders")
    destination_ref = TableRef(estate.managed.name, ("sales", "copy"), "orders")
    pinned = source.current_snapshot()
    assert pinned is not None
    statements = script_statements(source, source_ref, destination_ref, pinned.snapshot_id)
    for statement in statements:
        if not statement.optional:
            estate.sql(statement.sql)

    destination = estate.managed.pyiceberg().load_table(destination_ref.identifier)
    assert [(f.name, str(f.field_type), f.required, f.doc) for f in destination.schema().fields] == [
        (f.name, str(f.field_type), f.required, f.doc) for f in SCHEMA.fields
    ]
    assert [(f.name, str(f.transform)) for f in destination.spec().fields] == [
        (f.name, str(f.transform)) for f in SPEC.fields
    ]
    (sort_field,) = destination.sort_order().fields
    assert (sort_field.direction, sort_field.null_order) == (SortDirection.DESC, NullOrder.NULLS_LAST)
    assert [destination.schema().find_column_name(i) for i in destination.schema().identifier_field_ids] == ["id"]
    assert destination.metadata.properties["write.parquet.row-group-limit"] == "5000"
    assert spark_rows(estate.spark, spark_name(destination_ref), SCHEMA) == spark_rows(
        estate.spark, spark_name(source_ref), SCHEMA, pinned.snapshot_id
    )

    # the source moves on: an append and a delete; the (optional) sync statements catch up
    source.append(rows(60, 15))
    source.delete("id < 5")
    for statement in statements:
        if statement.optional and statement.title.startswith("sync"):
            estate.sql(statement.sql)
    assert spark_rows(estate.spark, spark_name(destination_ref), SCHEMA) == spark_rows(
        estate.spark, spark_name(source_ref), SCHEMA
    )
