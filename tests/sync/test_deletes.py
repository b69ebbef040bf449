"""Delete files carried by file-copy and by sync, with a writer busy on the source while copy and sync run.

Spark writes the merge-on-read position deletes (PyIceberg's own delete falls back to copy-on-write);
equality deletes, which Spark does not write, are committed as a writer such as Flink would, a
Parquet file of keys with its equality field ids. After the final sync the destination reads the
source's rows exactly, by Spark and by IceBridge's own reader (PyIceberg cannot plan tables with
equality deletes).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table
from pyiceberg.typedef import Record
from typer.testing import CliRunner

from icebridge.cli import app
from icebridge.engines._pyiceberg import replay_files
from icebridge.validation.reader import iter_table_batches
from tests.spark.conftest import PYSPARK_DISTUTILS, PYSPARK_SOCKET_LEAK, Estate, estate, spark  # noqa: F401

pytestmark = [pytest.mark.filterwarnings(PYSPARK_SOCKET_LEAK), pytest.mark.filterwarnings(PYSPARK_DISTUTILS)]


def equality_delete(table: Table, region: str, ids: list[int]) -> None:
    """Commit an equality-delete file on ``id`` in partition ``region`` (as Flink's upserts write them)."""
    table.refresh()
    path = f"{table.metadata.location}/data/region={region}/eq-{ids[0]}-{len(ids)}.parquet"
    field = pa.field("id", pa.int64(), metadata={"PARQUET:field_id": "1"})
    keys = pa.table({"id": pa.array(ids, pa.int64())}, schema=pa.schema([field]))
    with table.io.new_output(path).create(overwrite=True) as out:
        pq.write_table(keys, out)
    deletes = DataFile.from_args(
        content=DataFileContent.EQUALITY_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(region),
        record_count=len(ids),
        file_size_in_bytes=len(table.io.new_input(path)),
        equality_ids=[1],
        _table_format_version=2,
    )
    deletes.spec_id = table.spec().spec_id
    with table.transaction() as txn, replay_files(txn, "delete", {}, set()) as commit:
        commit.add_file(deletes)


def spark_rows(est: Estate, name: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in est.sql(f"SELECT id, region, v FROM {name} ORDER BY id")]


def own_rows(table: Table) -> list[tuple[Any, ...]]:
    out = [tuple(r.values()) for b in iter_table_batches(table, None) for r in b.to_pylist()]
    return sorted(out, key=lambda r: r[0])


def _errors(est: Estate) -> str:
    from icebridge.store import open_store

    store = open_store(est.state_url)
    try:
        return "\n".join(
            f"{e.message}\n{(e.data or {}).get('traceback', '')}" for e in store.events() if e.kind == "error"
        )
    finally:
        store.close()


def cli(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, [*args, "-c", str(config), "--json"])
    return result.exit_code, json.loads(result.output[result.output.index("{") :])


def test_deletes_are_carried_while_a_writer_keeps_writing(estate: Estate) -> None:  # noqa: F811
    est = estate
    src, dst = f"{est.foreign.name}.ns.t", f"{est.managed.name}.ns.t"
    est.sql(f"CREATE NAMESPACE IF NOT EXISTS {est.foreign.name}.ns")
    est.sql(
        f"CREATE TABLE {src} (id BIGINT, region STRING, v STRING) USING iceberg PARTITIONED BY (region) "
        "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read', "
        "'write.update.mode' = 'merge-on-read', 'write.merge.mode' = 'merge-on-read')"
    )
    regions = "CASE id % 3 WHEN 0 THEN 'eu' WHEN 1 THEN 'us' ELSE 'apac' END"
    est.sql(f"INSERT INTO {src} SELECT id, {regions}, CAST(id AS STRING) FROM range(0, 300)")
    est.sql(f"DELETE FROM {src} WHERE id % 7 = 0")  # position deletes
    foreign = est.foreign.pyiceberg()
    equality_delete(foreign.load_table("ns.t"), "eu", [3, 6, 9])
    config = est.write_config([{"source": f"{est.foreign.name}.ns.*", "target": f"{est.managed.name}.ns"}])

    code, plan = cli(config, "plan")
    assert code == 0, plan
    [item] = plan["items"] if "items" in plan else plan["tables"]
    assert item["strategy"] == "file-copy" and "delete file(s)" in item["reason"], item

    def writer() -> None:
        est.sql(f"INSERT INTO {src} SELECT id, {regions}, 'late' FROM range(300, 360)")
        est.sql(f"INSERT OVERWRITE {src} PARTITION (region = 'us') SELECT id, 'over' FROM {src} WHERE region = 'us'")
        est.sql(f"DELETE FROM {src} WHERE id % 11 = 0")
        est.sql(f"UPDATE {src} SET v = 'updated' WHERE id % 13 = 0")
        equality_delete(est.foreign.pyiceberg().load_table("ns.t"), "apac", [5, 20, 35])
        options = "map('min-input-files', '2')"
        est.sql(f"CALL {est.foreign.name}.system.rewrite_data_files(table => 'ns.t', options => {options})")
        est.sql(f"INSERT INTO {src} SELECT id, {regions}, 'last' FROM range(400, 420)")

    failures: list[BaseException] = []

    def writing() -> None:
        try:
            writer()
        except BaseException as exc:
            failures.append(exc)

    busy = threading.Thread(target=writing)
    busy.start()
    try:
        code, migrated = cli(config, "migrate")
        assert code == 0, _errors(est)
        for _ in range(3):
            code, synced = cli(config, "sync")
            assert code == 0, synced
    finally:
        busy.join()
    assert failures == [], str(failures[0])[:1500]

    expected = spark_rows(est, src)
    source_metadata = foreign.load_table("ns.t").metadata
    assert any(s.summary.operation.value == "replace" for s in source_metadata.snapshots)  # type: ignore[union-attr]
    code, cut = cli(config, "cutover")
    assert code == 0, cut["tables"][0]["message"] + _errors(est)
    assert not foreign.table_exists("ns.t")
    destination = est.managed.pyiceberg().load_table("ns.t")
    added = [s.summary.additional_properties for s in destination.metadata.snapshots]  # type: ignore[union-attr]
    assert any("added-position-delete-files" in a for a in added)  # both kinds were carried
    assert any("added-equality-delete-files" in a for a in added)
    est.sql(f"REFRESH TABLE {dst}")
    assert spark_rows(est, dst) == expected
    assert own_rows(destination) == expected
