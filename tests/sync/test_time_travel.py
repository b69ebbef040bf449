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
from pyiceberg.table import Table

from icebridge.engines._pyiceberg import replay_files, write_data_files
from tests.catalogs.conftest import RestCatalogs, rest, rest_server  # noqa: F401  (the fixtures)
from tests.integration import estate
from tests.sync.conftest import Live, make_live, rows, write_commits

CLAMPED = "icebridge.timestamp-clamped"


def rows_as_of(table: Table, timestamp_ms: int) -> list[dict[str, Any]] | None:
    """The rows ``table`` reads as of ``timestamp_ms`` (None: it had no snapshot yet)."""
    snapshot = table.snapshot_as_of_timestamp(timestamp_ms)
    return None if snapshot is None else rows(table, snapshot.snapshot_id)


def assert_time_travels_alike(source: Table, destination: Table) -> None:
    """At every source commit's time and the millisecond before it, both tables read the same rows."""
    times = [entry.timestamp_ms for entry in source.history()]
    assert len(times) >= 2
    for when in sorted({t + d for t in times for d in (-1, 0)}):
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


def history_all_source(root: Path, managed: dict[str, str] | None = None) -> Live:
    """The live source with a history three, two and one hour old, then commits of now."""
    live = make_live(root, managed=managed, history="all")
    foreign = live.foreign()
    spec = live.source().spec()
    foreign.drop_table("shop.events")  # re-created with an older history
    source = foreign.create_table("shop.events", estate.EVENTS_SCHEMA, partition_spec=spec)
    now = int(time.time() * 1000)
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


def test_history_all_time_travels_alike_on_sql(tmp_path: Path) -> None:
    check_history_all(history_all_source(tmp_path))


def test_history_all_time_travels_alike_on_rest(tmp_path: Path, rest: RestCatalogs) -> None:  # noqa: F811
    check_history_all(history_all_source(tmp_path, managed=rest.new("dst")))
