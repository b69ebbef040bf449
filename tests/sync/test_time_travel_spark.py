"""Spark's ``TIMESTAMP AS OF`` and ``VERSION AS OF`` on a destination replayed with ``history: all``.

The source's history is hours older than the migration, so the destination's metadata (written by
PyIceberg on a SQL catalog) holds snapshots far older than the table's creation; Iceberg Java reads it
(its checks on the order of the history pass) and answers every time as the source does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC

from tests.integration import estate as small
from tests.spark.conftest import PYSPARK_DISTUTILS, PYSPARK_SOCKET_LEAK, Estate, estate, spark  # noqa: F401
from tests.sync.test_deletes import cli
from tests.sync.test_time_travel import HOUR_MS, commit_at, old_table

pytestmark = [pytest.mark.filterwarnings(PYSPARK_SOCKET_LEAK), pytest.mark.filterwarnings(PYSPARK_DISTUTILS)]


def spark_rows(est: Estate, name: str, clause: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in est.sql(f"SELECT id, region FROM {name} {clause} ORDER BY id")]


def test_spark_time_travels_on_the_destination_as_on_the_source(estate: Estate) -> None:  # noqa: F811
    est = estate
    foreign = est.foreign.pyiceberg()
    foreign.create_namespace("ns")
    now = int(time.time() * 1000)
    source = old_table(foreign, "ns.t", UNPARTITIONED_PARTITION_SPEC, now - 4 * HOUR_MS)
    commit_at(source, now - 3 * HOUR_MS, add=small.events_arrow(0, 50))
    first = {task.file.file_path for task in source.scan().plan_files()}
    commit_at(source, now - 2 * HOUR_MS, add=small.events_arrow(100, 30))
    commit_at(source, now - HOUR_MS, remove=first)
    source.refresh()
    source.append(small.events_arrow(500, 10))
    config = est.write_config(
        [{"source": f"{est.foreign.name}.ns.*", "target": f"{est.managed.name}.ns", "history": "all"}]
    )
    code, report = cli(config, "migrate")
    assert code == 0, report

    src, dst = f"{est.foreign.name}.ns.t", f"{est.managed.name}.ns.t"
    est.sql(f"REFRESH TABLE {dst}")
    source.refresh()
    destination = est.managed.pyiceberg().load_table("ns.t")
    replayed = {
        int(s.summary.additional_properties["icebridge.source-snapshot-id"]): s.snapshot_id  # type: ignore[union-attr]
        for s in destination.metadata.snapshots
    }
    for entry in source.history():
        at = f"TIMESTAMP AS OF timestamp_millis({entry.timestamp_ms})"
        assert spark_rows(est, dst, at) == spark_rows(est, src, at), entry
        version = f"VERSION AS OF {replayed[entry.snapshot_id]}"
        assert spark_rows(est, dst, version) == spark_rows(est, src, f"VERSION AS OF {entry.snapshot_id}"), entry
    before = f"TIMESTAMP AS OF timestamp_millis({source.history()[1].timestamp_ms - 1})"
    assert spark_rows(est, dst, before) == spark_rows(est, src, before) != []
