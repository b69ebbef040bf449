"""A small foreign estate built in seconds, for the behaviour suite (the demo builds a bigger one)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import yaml
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
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

UTC = dt.UTC


def catalog_props(kind: str, root: Path, name: str, db_url: str | None = None) -> dict[str, str]:
    """SQL catalog properties on SQLite (a file under root) or PostgreSQL (``db_url``)."""
    uri = f"sqlite:///{root}/{name}.db" if kind == "sqlite" else str(db_url)
    return {"type": "sql", "uri": uri, "warehouse": f"file://{root}/{name}-warehouse"}


def open_catalog(name: str, props: dict[str, str]) -> Catalog:
    return SqlCatalog(name, **{k: v for k, v in props.items() if k != "type"})


def events_arrow(start: int, n: int) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": pa.array([["eu", "us", "apac", None][i % 4] for i in ids], pa.string()),
            "amount": pa.array([Decimal(i * 7 % 1000) / 100 if i % 9 else None for i in ids], pa.decimal128(12, 2)),
            "score": pa.array([float(i) / 3 if i % 5 else None for i in ids], pa.float64()),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=7 * i) for i in ids],
                pa.timestamp("us", "UTC"),
            ),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i % 40) for i in ids], pa.date32()),
            "payload": pa.array([bytes([i % 256]) * (i % 5) if i % 7 else None for i in ids], pa.binary()),
        }
    )


EVENTS_SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "region", StringType(), required=False),
    NestedField(3, "amount", DecimalType(12, 2), required=False),
    NestedField(4, "score", DoubleType(), required=False),
    NestedField(5, "at", TimestamptzType(), required=False),
    NestedField(6, "day", DateType(), required=False),
    NestedField(7, "payload", BinaryType(), required=False),
)

NESTED_SCHEMA = Schema(
    NestedField(1, "order_id", LongType(), required=False),
    NestedField(
        2,
        "customer",
        StructType(
            NestedField(3, "name", StringType(), required=False),
            NestedField(4, "city", StringType(), required=False),
        ),
        required=False,
    ),
    NestedField(5, "items", ListType(6, LongType(), element_required=False), required=False),
    NestedField(7, "attributes", MapType(8, StringType(), 9, StringType(), value_required=False), required=False),
)


def nested_arrow(n: int) -> pa.Table:
    schema = pa.schema(
        [
            pa.field("order_id", pa.int64()),
            pa.field("customer", pa.struct([pa.field("name", pa.string()), pa.field("city", pa.string())])),
            pa.field("items", pa.list_(pa.int64())),
            pa.field("attributes", pa.map_(pa.string(), pa.string())),
        ]
    )
    rows = {
        "order_id": list(range(n)),
        "customer": [None if i % 11 == 0 else {"name": f"c{i}", "city": None if i % 3 else "Oslo"} for i in range(n)],
        "items": [list(range(i % 4)) if i % 6 else None for i in range(n)],
        "attributes": [[("k", str(i)), ("z", None)] if i % 2 else [] for i in range(n)],
    }
    return pa.Table.from_pydict(rows, schema=schema)


def build(catalog: Catalog, *, big_files: int = 0) -> dict[str, Table]:
    """Source tables covering partitions, evolution, deletes, nested types, emptiness and odd names."""
    tables: dict[str, Table] = {}
    for ns in ("shop", "odd-ns"):
        catalog.create_namespace_if_not_exists(ns)

    by_day = catalog.create_table(
        "shop.events",
        EVENTS_SCHEMA,
        partition_spec=PartitionSpec(PartitionField(6, 1000, DayTransform(), "day_day")),
    )
    by_day.append(events_arrow(0, 300))
    by_day.append(events_arrow(300, 200))
    by_day.delete("id < 20")  # a row-level delete
    tables["shop.events"] = by_day

    bucketed = catalog.create_table(
        "shop.customers",
        EVENTS_SCHEMA,
        partition_spec=PartitionSpec(PartitionField(1, 1000, BucketTransform(4), "id_bucket")),
    )
    bucketed.append(events_arrow(0, 120))
    with bucketed.update_schema() as update:  # schema evolution: add, rename, drop
        update.add_column("tier", IntegerType())
        update.rename_column("score", "rating")
        update.delete_column("payload")
    evolved = (
        events_arrow(120, 80)
        .drop_columns(["payload"])
        .rename_columns(["id", "region", "amount", "rating", "at", "day"])
    )
    evolved = evolved.append_column("tier", pa.array([i % 3 for i in range(80)], pa.int32()))
    bucketed.refresh()
    bucketed.append(evolved)
    tables["shop.customers"] = bucketed

    by_region = catalog.create_table(
        "shop.regions",
        EVENTS_SCHEMA,
        partition_spec=PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region")),
    )
    by_region.append(events_arrow(0, 100))
    with by_region.update_spec() as spec:  # partition-spec change
        spec.add_field("id", BucketTransform(2), "id_bucket")
    by_region.append(events_arrow(100, 100))
    tables["shop.regions"] = by_region

    nested = catalog.create_table(("odd-ns", "order events"), NESTED_SCHEMA)
    nested.append(nested_arrow(150))
    tables["odd-ns.order events"] = nested

    tables["shop.empty"] = catalog.create_table("shop.empty", EVENTS_SCHEMA)

    if big_files:
        many = catalog.create_table("shop.many_files", EVENTS_SCHEMA)
        for i in range(big_files):
            many.append(events_arrow(i * 500, 500))
        tables["shop.many_files"] = many
    return tables


def write_config(root: Path, state_url: str, foreign: dict[str, str], managed: dict[str, str], **migrate: int) -> Path:
    """An icebridge.yaml mapping every foreign table to the managed catalog, namespace kept."""
    config = {
        "state": state_url,
        "catalogs": {"foreign": foreign, "managed": managed},
        "mappings": [
            # one table through each local strategy: customers (schema evolved) is rewritten, the rest byte-copied
            {"source": "foreign.shop.customers", "target": "managed.shop", "strategy": "rewrite"},
            {"source": "foreign.*.*", "target": "managed.{namespace}"},
        ],
        "migrate": {"concurrency": 2, "backoff_seconds": 0.05, **migrate},
    }
    path = root / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
