"""Time travel by timestamp on the destination: each commit carries its source commit's time.

For every source snapshot S, ``AS OF S.timestamp_ms`` (and the millisecond before it) on the destination
reads the rows the source reads at that time, by PyIceberg on SQL and REST destinations and by Spark's
``TIMESTAMP AS OF``; a commit the destination's history forces later is clamped, and the summary and
the sync's outcome say so.
"""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog import Catalog
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.serializers import ToOutputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER

from icebridge.engines._pyiceberg import replay_files, write_data_files
from tests.catalogs.conftest import RestCatalogs, rest, rest_server  # noqa: F401  (the fixtures)
from tests.integration import estate
from tests.sync.conftest import Live, make_live, rows, write_commits

CLAMPED = "icebridge.timestamp-clamped"


def rows_as_of(table: Table, timestamp_ms: int) -> list[dict[str, Any]] | None:
    """The rows ``table`` reads as of ``timestamp_ms`` (None: it had no snapshot yet)."""
    snapshot = table.snapshot_as_of_timestamp(timestamp_ms)
    return None if snapshot is None else rows(table, snapshot.snapshot_id)


def assert_time_travels_alike(source: Table, destination: Table, since: int | None = None) -> None:
    """At every source commit's time and the millisecond before it (from ``since`` on), both tables read the
    same rows."""
    times = [entry.timestamp_ms for entry in source.history()]
    assert len(times) >= 2
    for when in sorted({t + d for t in times for d in (-1, 0)}):
        if since is not None and when < since:
            continue
        assert rows_as_of(destination, when) == rows_as_of(source, when), when


def summaries(table: Table) -> list[dict[str, str]]:
    return [s.summary.additional_properties for s in table.metadata.snapshots]  # type: ignore[union-attr]


HOUR_MS = 3_600_000


def commit_at(table: Table, timestamp_ms: int, add: pa.Table | None = None, remove: set[str] = frozenset()) -> None:
    """A source commit made at ``timestamp_ms`` (a history older than the migration): rows appended, or
    data files removed."""
    table.refresh()
    with table.transaction() as txn:
        files = (
            list(write_data_files(txn.table_metadata, add, table.io, uuid.uuid4(), itertools.count())) if add else []
        )
        operation = "append" if add is not None else "delete"
        with replay_files(txn, operation, {}, set(remove), timestamp_ms) as commit:
            for data_file in files:
                commit.add_file(data_file)


def old_table(catalog: Catalog, name: str, spec: PartitionSpec, created_ms: int) -> Table:
    """A new table whose metadata says it was created at ``created_ms`` (Iceberg Java refuses a history
    older than the metadata before it, so a table given an old history must be as old)."""
    namespace, table = name.split(".")
    location = f"{catalog.properties['warehouse'].rstrip('/')}/{namespace}.db/{table}-{uuid.uuid4().hex[:6]}"
    metadata = new_table_metadata(estate.EVENTS_SCHEMA, spec, UNSORTED_SORT_ORDER, location, {})
    metadata = metadata.model_copy(update={"last_updated_ms": created_ms})
    path = f"{location}/metadata/00000-{uuid.uuid4()}.metadata.json"
    ToOutputFile.table_metadata(metadata, load_file_io(dict(catalog.properties), location).new_output(path))
    return catalog.register_table(name, path)


def history_all_source(root: Path, managed: dict[str, str] | None = None, **rule: str) -> Live:
    """The live source with a history three, two and one hour old, then commits of now."""
    live = make_live(root, managed=managed, history="all", **rule)
    foreign = live.foreign()
    spec = live.source().spec()
    foreign.drop_table("shop.events")  # re-created with an older history
    now = int(time.time() * 1000)
    source = old_table(foreign, "shop.events", spec, now - 4 * HOUR_MS)
    commit_at(source, now - 3 * HOUR_MS, add=estate.events_arrow(0, 200))
    first = {task.file.file_path for task in source.scan().plan_files()}
    commit_at(source, now - 2 * HOUR_MS, add=estate.events_arrow(300, 40))
    commit_at(source, now - HOUR_MS, remove=first)
    write_commits(live.source())
    return live


def check_history_all(live: Live) -> None:
    code, report = live.cli_json("migrate")
    assert code == 0, report
    source, destination = live.source(), live.destination()
    assert len(destination.history()) == len(source.history())
    assert [e.timestamp_ms for e in destination.history()] == [e.timestamp_ms for e in source.history()]
    assert not any(CLAMPED in s for s in summaries(destination))
    assert_time_travels_alike(source, destination)

    live.source().append(estate.events_arrow(2000, 15))  # later commits, synced in a second run
    live.source().delete("id < 20")
    code, report = live.cli_json("sync")
    assert code == 0, report
    assert "stamped later" not in report["tables"][0]["message"]
    assert_time_travels_alike(live.source(), live.destination())


@pytest.mark.parametrize("strategy", ["file-copy", "rewrite", "register"])
def test_history_all_time_travels_alike_on_sql(tmp_path: Path, strategy: str) -> None:
    check_history_all(history_all_source(tmp_path, strategy=strategy))


def test_history_all_time_travels_alike_on_rest(tmp_path: Path, rest: RestCatalogs) -> None:  # noqa: F811
    check_history_all(history_all_source(tmp_path, managed=rest.new("dst")))


def test_a_bulk_copy_stamps_its_last_commit_with_the_source_time(tmp_path: Path) -> None:
    live = make_live(tmp_path)  # history: current, copied in one commit per file
    config = yaml.safe_load(live.config.read_text())
    config["migrate"]["files_per_commit"] = 1
    live.config.write_text(yaml.safe_dump(config, sort_keys=False))
    pinned = live.source().current_snapshot()
    assert pinned is not None
    code, report = live.cli_json("migrate")
    assert code == 0, report
    destination = live.destination()
    stamps = [e.timestamp_ms for e in destination.history()]
    assert len(stamps) == len(live.source().inspect.files()) > 1  # one commit per file
    assert stamps[-1] == pinned.timestamp_ms and stamps == sorted(set(stamps))  # the last, complete one at S
    assert not any(CLAMPED in s for s in summaries(destination))

    live.source().append(estate.events_arrow(1000, 30))
    assert live.cli("sync")[0] == 0
    assert_time_travels_alike(live.source(), live.destination(), since=pinned.timestamp_ms)


def test_a_commit_the_destination_forces_later_is_clamped_and_said(tmp_path: Path) -> None:
    live = make_live(tmp_path)
    assert live.cli("migrate")[0] == 0
    live.source().append(estate.events_arrow(1000, 20))
    early = live.source().current_snapshot()
    # the destination changed after that source commit: its history is later than the commit now
    live.destination().transaction().set_properties({"owner": "analytics"}).commit_transaction()
    live.source().append(estate.events_arrow(2000, 20))
    exact = live.source().current_snapshot()
    assert early is not None and exact is not None

    code, report = live.cli_json("sync")
    assert code == 0, report
    message = report["tables"][0]["message"]
    assert "1 commit(s) stamped later than their source's time" in message, message
    assert (
        f"(source snapshots {early.snapshot_id})" in message
        and f"exact from source snapshot {exact.snapshot_id}" in message
    )
    by_source = {int(s["icebridge.source-snapshot-id"]): s for s in summaries(live.destination())}
    assert CLAMPED in by_source[early.snapshot_id] and CLAMPED not in by_source[exact.snapshot_id]
    assert_time_travels_alike(live.source(), live.destination(), since=exact.timestamp_ms)

    # a source clock that went back ten minutes: that commit is clamped, the next one exact again
    commit_at(live.source(), exact.timestamp_ms - 600_000, add=estate.events_arrow(3000, 5))
    back = live.source().current_snapshot()
    live.source().append(estate.events_arrow(4000, 5))
    after = live.source().current_snapshot()
    assert back is not None and after is not None
    code, report = live.cli_json("sync")
    assert code == 0, report
    assert f"exact from source snapshot {after.snapshot_id}" in report["tables"][0]["message"], report
    stamped = {s.snapshot_id: s.timestamp_ms for s in live.destination().metadata.snapshots}
    replayed = {
        int(s.summary["icebridge.source-snapshot-id"]): s.snapshot_id for s in live.destination().metadata.snapshots
    }  # type: ignore[index]
    assert stamped[replayed[after.snapshot_id]] == after.timestamp_ms
    assert stamped[replayed[back.snapshot_id]] > stamped[replayed[exact.snapshot_id]]  # kept in order
    events = [e for e in live.events() if e.kind == "timestamp-clamped"]
    assert {(e.data or {}).get("source_snapshot_id") for e in events} >= {early.snapshot_id, back.snapshot_id}
