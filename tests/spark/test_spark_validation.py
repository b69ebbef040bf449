"""Levels 3 and 4 on the executors of the standalone cluster (``--engine spark``): they pass on a faithful copy,
say where they ran, give the local path's checksums and digests, and fail a flipped byte and a deleted row.

Three tiny partitioned tables are migrated with file-copy on the cluster (levels 1-3, level 3 on the
executors); then one destination file of ``flipped`` gets one byte changed (same size), one row of
``trimmed`` is deleted, and ``icebridge validate --engine spark --level 4`` runs levels 3 and 4 of every
table on the executors again. Both runs are separate processes whose sessions connect to the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from icebridge.phases.validate import compare
from icebridge.store import open_store
from icebridge.validation.reader import SnapshotFiles
from tests.spark.conftest import SharedCatalog, shared_catalog, spark_settings
from tests.spark.test_spark_cluster import cluster  # noqa: F401 - the standalone master and worker

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

TABLES = ("clean", "flipped", "trimmed")
ROWS = 300


@dataclass
class Runs:
    """The two runs' outcomes and what the tests need to look at them."""

    root: Path
    master: str
    foreign: SharedCatalog
    managed: SharedCatalog
    migrate: dict[str, Any]
    validate: dict[str, Any]
    validate_exit: int
    flipped_file: str
    validations: dict[str, dict[int, dict[str, Any]]]  # table -> run id -> comparator -> (passed, details)


def _icebridge(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icebridge", *args, "-c", str(root / "icebridge.yaml"), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=root,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},  # the executors' Python: this interpreter
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, pg_server: str, cluster: tuple[str, int]) -> Runs:  # noqa: F811
    url, _ui = cluster
    root = tmp_path_factory.mktemp("spark-validation")
    foreign = shared_catalog(root, pg_server, "foreign", None)
    managed = shared_catalog(root, pg_server, "managed", None)
    source = foreign.pyiceberg()
    source.create_namespace("shop")
    managed.pyiceberg().create_namespace("shop")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    rows = pa.table(
        {"id": pa.array(range(ROWS), pa.int64()), "region": [("eu", "us", "apac")[i % 3] for i in range(ROWS)]}
    )
    for name in TABLES:
        table = source.create_table(f"shop.{name}", schema, partition_spec=spec)
        table.append(rows.slice(0, ROWS // 2))
        table.append(rows.slice(ROWS // 2))

    settings = spark_settings()
    settings["master"] = url
    settings["conf"].update(
        {
            "spark.driver.host": "127.0.0.1",
            "spark.executor.memory": "1g",
            # nothing of this checkout on the executors' path: they import the icebridge the driver ships
            "spark.executorEnv.PYTHONPATH": "",
        }
    )
    (root / "icebridge.yaml").write_text(
        yaml.safe_dump(
            {
                "state": f"sqlite:///{root}/state.db",
                "catalogs": {foreign.name: foreign.props, managed.name: managed.props},
                "mappings": [
                    {
                        "source": f"{foreign.name}.*.*",
                        "target": f"{managed.name}.{{namespace}}",
                        "strategy": "file-copy",
                    }
                ],
                "engines": {"spark": settings},
            }
        )
    )
    migrated = _icebridge(root, "migrate", "--engine", "spark")
    assert migrated.returncode == 0, f"{migrated.stdout[-3000:]}\n{migrated.stderr[-3000:]}"

    # one byte of one destination data file flipped in place, its size unchanged
    flipped = managed.pyiceberg().load_table("shop.flipped")
    victim = sorted(t.data_file.file_path for t in SnapshotFiles(flipped, None).tasks)[0]
    local = Path(victim.removeprefix("file:"))
    data = bytearray(local.read_bytes())
    data[len(data) // 3] ^= 0xFF
    local.write_bytes(bytes(data))
    # one row deleted from the destination (PyIceberg rewrites the file that held it)
    managed.pyiceberg().load_table("shop.trimmed").delete("id = 7")

    validated = _icebridge(root, "validate", "--engine", "spark", "--level", "4")
    store = open_store(f"sqlite:///{root}/state.db")
    try:
        by_table: dict[str, dict[int, dict[str, Any]]] = {}
        for task in store.list_tasks():
            name = str(task.source).rsplit(".", 1)[1]
            for v in store.validations(task.id):
                assert v.run_id is not None
                by_table.setdefault(name, {}).setdefault(v.run_id, {})[v.comparator] = (v.passed, v.details)
    finally:
        store.close()
    return Runs(
        root,
        url,
        foreign,
        managed,
        _json(migrated),
        _json(validated) if "{" in validated.stdout else {},
        validated.returncode,
        victim,
        by_table,
    )


def _run(runs: Runs, table: str, which: int) -> dict[str, Any]:
    """The comparators of ``table``'s ``which``-th run (0: migrate, 1: validate)."""
    by_run = runs.validations[table]
    return by_run[sorted(by_run)[which]]


def _on_the_cluster(runs: Runs, details: dict[str, Any]) -> None:
    where = details["executed_on"]
    assert where["where"] == "spark executors", where
    assert where["master"] == runs.master
    assert where["executors"] >= 1, where  # the worker's executor, the driver not counted
    assert where["tasks"] >= 1 and where["workers"], where
    assert where["code"] == "shipped", where


def test_migrate_with_the_spark_engine_proves_every_file_on_the_executors(runs: Runs) -> None:
    assert [t["status"] for t in runs.migrate["tables"]] == ["succeeded"] * len(TABLES), runs.migrate
    for table in TABLES:
        comparators = _run(runs, table, 0)
        passed, details = comparators["file-identity"]
        assert passed, details
        assert details["files"] == details["identical"] == 6  # 2 appends × 3 regions
        assert details["proofs"] == {"read": 6}
        _on_the_cluster(runs, details)
        assert "content-digest" not in comparators  # a byte copy whose files all match needs no level 4


def test_a_faithful_copy_passes_levels_3_and_4_on_the_executors_with_the_local_digests(runs: Runs) -> None:
    comparators = _run(runs, "clean", 1)
    for name in ("file-identity", "content-digest"):
        passed, details = comparators[name]
        assert passed, (name, details)
        _on_the_cluster(runs, details)
    # the same table validated in this process gives the same checksums and the same digests
    source = runs.foreign.pyiceberg().load_table("shop.clean")
    destination = runs.managed.pyiceberg().load_table("shop.clean")
    snapshot = source.current_snapshot()
    assert snapshot is not None
    local = compare(
        source, snapshot.snapshot_id, destination, byte_copy=True, default_levels=(1, 2, 3), levels=[4], workers=2
    )
    by_name = {r.comparator: r for r in local}
    for name in ("file-identity", "content-digest"):
        mine = json.loads(json.dumps(by_name[name].details))
        assert mine.pop("executed_on") == {"where": "this process", "threads": 4 if name == "file-identity" else 2}
        theirs = dict(comparators[name][1])
        theirs.pop("executed_on")
        theirs.pop("summary")
        assert theirs == mine, name
    digest = by_name["content-digest"].details
    assert digest["source_rows"] == digest["destination_rows"] == ROWS
    assert digest["partitions_compared"] == 3


def test_a_flipped_byte_fails_levels_3_and_4_on_the_executors_naming_the_file(runs: Runs) -> None:
    assert runs.validate_exit != 0
    comparators = _run(runs, "flipped", 1)
    passed, identity = comparators["file-identity"]
    assert not passed
    _on_the_cluster(runs, identity)
    [differing] = identity["differing"]
    assert differing["destination"] == runs.flipped_file
    assert differing["source_size"] == differing["destination_size"]
    assert differing["source_checksum"] != differing["destination_checksum"]
    assert runs.flipped_file in identity["summary"]
    passed, digest = comparators["content-digest"]
    assert not passed
    # the flipped byte breaks a page header: the executor cannot decode the file and its error names it
    assert "on a Spark executor" in digest["summary"] and runs.flipped_file in digest["summary"], digest


def test_a_deleted_row_fails_level_4_on_the_executors(runs: Runs) -> None:
    comparators = _run(runs, "trimmed", 1)
    passed, digest = comparators["content-digest"]
    assert not passed
    _on_the_cluster(runs, digest)
    assert (digest["source_rows"], digest["destination_rows"]) == (ROWS, ROWS - 1)
    [mismatch] = digest["mismatches"]
    assert mismatch["partition"] == "region=us"  # id 7: 7 % 3 == 1
    assert (mismatch["source"]["count"], mismatch["destination"]["count"]) == (ROWS // 3, ROWS // 3 - 1)
    # the rewritten file is no copy of a source file: level 3 fails too, settled by level 4's verdict
    assert comparators["file-identity"][0] is False
