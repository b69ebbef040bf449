"""Equality deletes on a table on the rewrite strategy: the partitions they affect are rewritten.

A commit adding an equality-delete file cannot be carried as files by a rewrite (the destination's files
have no counterpart in the source), so sync rewrites the partition of each delete file — the whole
table for a delete file of an unpartitioned spec — from the source snapshot with the deletes applied,
and says so. Later commits on the source still holding those deletes are replayed the same way.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table import Table
from pyiceberg.typedef import Record

from icebridge.engines._pyiceberg import replay_files
from tests.integration import estate
from tests.sync.conftest import make_live, rows
from tests.sync.test_deletes import equality_delete, own_rows


def global_equality_delete(table: Table, ids: list[int]) -> None:
    """An equality delete on ``id`` of an unpartitioned table, which applies to all of it."""
    table.refresh()
    path = f"{table.metadata.location}/data/eq-global-{ids[0]}.parquet"
    field = pa.field("id", pa.int64(), metadata={"PARQUET:field_id": "1"})
    with table.io.new_output(path).create(overwrite=True) as out:
        pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}, schema=pa.schema([field])), out)
    deletes = DataFile.from_args(
        content=DataFileContent.EQUALITY_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(ids),
        file_size_in_bytes=len(table.io.new_input(path)),
        equality_ids=[1],
        _table_format_version=2,
    )
    deletes.spec_id = table.spec().spec_id
    assert table.spec().fields == UNPARTITIONED_PARTITION_SPEC.fields
    with table.transaction() as txn, replay_files(txn, "delete", {}, set()) as commit:
        commit.add_file(deletes)


def plain(table_rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in table_rows]


def test_equality_deletes_on_the_rewrite_strategy_rewrite_their_partitions(tmp_path: Path) -> None:
    live = make_live(tmp_path, strategy="rewrite")
    assert live.cli("migrate")[0] == 0
    untouched = {r["file_path"] for r in live.destination().inspect.data_files().to_pylist()}
    equality_delete(live.source(), "eu", [0, 4, 8, 12])
    deleting = live.source().current_snapshot()
    live.source().append(estate.events_arrow(1000, 20))  # a plain append while the deletes are live
    assert deleting is not None

    code, report = live.cli_json("sync")
    assert code == 0, report
    message = report["tables"][0]["message"]
    assert "2 commit(s) replayed (2 as rewrite)" in message, message
    destination = live.destination()
    assert plain(rows(destination)) == own_rows(live.source())  # the deleted keys are gone, nothing else
    assert not {0, 4, 8, 12} & {r["id"] for r in rows(destination)}
    assert all(f["content"] == 0 for f in destination.inspect.files().to_pylist())  # no delete file carried
    kept = {r["file_path"] for r in destination.inspect.data_files().to_pylist()}
    assert len(untouched & kept) == len(untouched) - 1  # only the eu partition's file was rewritten
    store = live.store()
    try:
        how = {r.source_snapshot_id: r.how for r in store.snapshot_map(live.task().id)}
    finally:
        store.close()
    assert how[deleting.snapshot_id] == "rewrite"
    notes = [e for e in live.events() if e.kind == "equality-deletes-rewritten"]
    assert [(e.data or {}).get("scope") for e in notes] == ["1 partition(s)"]


def test_an_equality_delete_of_an_unpartitioned_table_rewrites_all_of_it(tmp_path: Path) -> None:
    live = make_live(tmp_path, strategy="rewrite")
    live.foreign().drop_table("shop.events")  # re-created unpartitioned
    live.foreign().create_table("shop.events", estate.EVENTS_SCHEMA).append(estate.events_arrow(0, 200))
    assert live.cli("migrate")[0] == 0
    global_equality_delete(live.source(), [1, 2, 3, 100])

    code, report = live.cli_json("sync")
    assert code == 0, report["tables"][0]["message"]
    assert plain(rows(live.destination())) == own_rows(live.source())
    assert not {1, 2, 3, 100} & {r["id"] for r in rows(live.destination())}
    notes = [e for e in live.events() if e.kind == "equality-deletes-rewritten"]
    assert [(e.data or {}).get("scope") for e in notes] == ["the whole table"]
