"""file-copy on the spark engine, on the standalone cluster of the Spark suite: the executors copy the files,
the driver commits them, and a copy whose executor is killed in the middle still lands exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from icebridge.phases.copy import referenced_files
from icebridge.storage import list_files
from icebridge.store import open_store
from tests.spark.conftest import shared_catalog, spark_settings
from tests.spark.test_spark_cluster import cluster  # noqa: F401 - the standalone master and worker

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
]

FILES = 40
ROWS_PER_FILE = 2_000


def _children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (a JVM starts processes from other threads than its main one)."""
    out: list[int] = []
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for thread in threads:
        try:
            out.extend(int(p) for p in (thread / "children").read_text().split())
        except OSError:
            continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    out, pending = [], [pid]
    while pending:
        for child in _children(pending.pop()):
            out.append(child)
            pending.append(child)
    return out


def _executors_of(workers: list[int]) -> list[int]:
    return [p for w in workers for p in _descendants(w) if "CoarseGrainedExecutorBackend" in _cmdline(p)]


def _worker_pids() -> list[int]:
    """The standalone Worker JVMs this test session started (children of this process's tree are not: the
    fixture starts them in their own sessions), found by their class and our own cluster's work folder."""
    mine = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        line = _cmdline(int(entry.name))
        if "org.apache.spark.deploy.worker.Worker" in line and "spark-cluster" in line:
            mine.append(int(entry.name))
    return mine


def _config(tmp_path: Path, foreign: object, managed: object, url: str) -> Path:
    settings = spark_settings()
    settings["master"] = url
    settings["conf"].update(
        {
            "spark.driver.host": "127.0.0.1",
            "spark.executor.memory": "1g",
            # the executors see this checkout, as a cluster would have icebridge installed
            "spark.executorEnv.PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }
    )
    config = tmp_path / "icebridge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state": f"sqlite:///{tmp_path}/state.db",
                "catalogs": {foreign.name: foreign.props, managed.name: managed.props},  # type: ignore[attr-defined]
                "mappings": [
                    {
                        "source": f"{foreign.name}.*.*",  # type: ignore[attr-defined]
                        "target": f"{managed.name}.{{namespace}}",  # type: ignore[attr-defined]
                        "strategy": "file-copy",
                    }
                ],
                "migrate": {"files_per_commit": 10},
                "engines": {"spark": settings},
            }
        )
    )
    return config


def test_executors_copy_the_files_and_a_killed_executor_changes_nothing(
    tmp_path: Path,
    pg_server: str,
    cluster: tuple[str, int],  # noqa: F811
) -> None:
    url, _ui = cluster
    foreign = shared_catalog(tmp_path, pg_server, "foreign", None)
    managed = shared_catalog(tmp_path, pg_server, "managed", None)
    source = foreign.pyiceberg()
    source.create_namespace("shop")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False), NestedField(2, "note", StringType(), required=False)
    )
    table = source.create_table("shop.events", schema)
    for i in range(FILES):
        ids = range(i * ROWS_PER_FILE, (i + 1) * ROWS_PER_FILE)
        table.append(pa.table({"id": pa.array(ids, pa.int64()), "note": [f"n{j}" for j in ids]}))
    table.refresh()
    source_files = sorted(t.file.file_path for t in table.scan().plan_files())
    assert len(source_files) == FILES
    managed.pyiceberg().create_namespace("shop")
    config = _config(tmp_path, foreign, managed, url)

    workers = _worker_pids()
    assert workers, "the cluster's worker is running"
    killed: list[int] = []
    stop = threading.Event()

    def kill_an_executor_mid_copy() -> None:
        # the copy stage is the one with Python workers under the executor (mapInArrow); kill its JVM then
        while not stop.is_set():
            for executor in _executors_of(workers):
                if any("python" in _cmdline(c) for c in _descendants(executor)):
                    os.kill(executor, signal.SIGKILL)
                    killed.append(executor)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_an_executor_mid_copy, daemon=True)
    killer.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "icebridge", "migrate", "--engine", "spark", "-c", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=tmp_path,
            env={**os.environ, "PYSPARK_PYTHON": sys.executable},  # the executors' Python: this interpreter
        )
    finally:
        stop.set()
        killer.join(timeout=5)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert killed, "an executor was killed while it copied"
    report = json.loads(done.stdout[done.stdout.index("{") :])
    [outcome] = report["tables"]
    assert outcome["status"] == "succeeded", outcome

    copied = managed.pyiceberg().load_table("shop.events")
    ids = copied.scan().to_arrow().column("id").to_pylist()
    assert sorted(ids) == list(range(FILES * ROWS_PER_FILE)), "every row once"
    # every batch committed once, every file once, nothing left over
    batches = [s.summary.additional_properties.get("icebridge.batch") for s in copied.metadata.snapshots if s.summary]
    assert sorted(batches, key=int) == [str(b) for b in range(FILES // 10)]
    dest_files = sorted(t.file.file_path for t in copied.scan().plan_files())
    assert [p.rsplit("/", 1)[1] for p in dest_files] == [p.rsplit("/", 1)[1] for p in source_files]
    location = copied.metadata.location
    stored = {f.path for folder in ("data", "metadata") for f in list_files(copied.io, f"{location}/{folder}")}
    assert stored <= referenced_files(copied), "no orphan files"

    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        [task] = store.list_tasks()
        assert task.strategy == "file-copy"
        events = store.events(task_id=task.id)
        executor_copies = [e for e in events if "copied by the executors" in e.message]
        assert sum(e.data["files"] for e in executor_copies if e.data) >= FILES, [e.message for e in events]
        assert all(set(e.data["ways"]) <= {"kernel"} for e in executor_copies if e.data)
        levels = {v.comparator: v.passed for v in store.validations(task.id)}
        assert levels.get("file-identity") is True, levels
    finally:
        store.close()
