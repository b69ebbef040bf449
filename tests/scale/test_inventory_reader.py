"""Inventory reads manifests with readers resolved once per writer schema: it must see exactly the entries
PyIceberg's own reader sees, on format v1 and v2 tables, partitioned or not, after appends and deletes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from icebridge.model import TableRef
from icebridge.phases.inventory import _live_entries, table_facts

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False), NestedField(2, "region", StringType(), required=False)
)


def _entries(entries: object) -> list[tuple[object, ...]]:
    return sorted(
        (
            e.status,  # type: ignore[attr-defined]
            e.data_file.content,  # type: ignore[attr-defined]
            e.data_file.file_path,  # type: ignore[attr-defined]
            e.data_file.file_format,  # type: ignore[attr-defined]
            e.data_file.record_count,  # type: ignore[attr-defined]
            e.data_file.file_size_in_bytes,  # type: ignore[attr-defined]
            tuple(e.data_file.partition),  # type: ignore[attr-defined]
        )
        for e in entries  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("partitioned", [False, True])
def test_lean_reader_sees_what_pyiceberg_sees(tmp_path: Path, version: int, partitioned: bool) -> None:
    catalog = SqlCatalog("src", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("ns")
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region")) if partitioned else PartitionSpec()
    table = catalog.create_table(("ns", "t"), SCHEMA, partition_spec=spec, properties={"format-version": str(version)})
    for start in (0, 10, 20):
        ids = list(range(start, start + 10))
        table.append(pa.table({"id": pa.array(ids, pa.int64()), "region": [("eu", "us")[i % 2] for i in ids]}))
    table.delete(EqualTo("id", 3))  # rewrites a file: a deleted entry in a manifest the inventory must skip
    snapshot = table.current_snapshot()
    assert snapshot is not None
    theirs = [e for m in snapshot.manifests(table.io) for e in m.fetch_manifest_entry(table.io, discard_deleted=True)]
    ours = list(_live_entries(table.io, snapshot))
    assert _entries(ours) == _entries(theirs) and len(ours) >= 3
    facts = table_facts(TableRef("src", ("ns",), "t"), table)
    assert facts.records == 29 and facts.data_files == len(theirs) and facts.file_formats == ("PARQUET",)
    catalog.engine.dispose()
