"""The driver's and the executors' halves of ``validation.spark_exec`` without a JVM.

The executors' side (``_ExecutorTask``) is called here directly on Arrow batches, as ``mapInArrow`` calls
it; the driver's side runs over an in-process session that hands each partition of rows to that same
callable, so its checks (every file once, same code, same row-hash library, an executor's error) are
exercised exactly as they run against Spark. The shipped zip is imported by a fresh interpreter.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.errors import ValidationError
from icebridge.phases.validate import compare
from icebridge.validation import spark_exec
from icebridge.validation.reader import SnapshotFiles
from icebridge.validation.spark_exec import SparkExecutors, code_fingerprint


class _Context:
    """What ``ship_code`` and the report ask of a SparkContext."""

    def __init__(self) -> None:
        self.applicationId = f"app-in-process-{id(self)}"
        self.master = "in-process"
        self.py_files: list[str] = []

    def addPyFile(self, path: str) -> None:  # noqa: N802 - pyspark's name
        self.py_files.append(path)


class _Frame:
    def __init__(self, rows: list[tuple[Any, ...]], session: _Session, partitions: int = 1) -> None:
        self.rows, self.session, self.partitions = rows, session, partitions

    def repartition(self, n: int) -> _Frame:
        return _Frame(self.rows, self.session, n)

    def mapInArrow(self, fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]], schema: str) -> _Frame:  # noqa: N802
        out: list[tuple[Any, ...]] = []
        for p in range(self.partitions):
            mine = [r[0] for r in self.rows[p :: self.partitions]]
            batch = pa.RecordBatch.from_pydict({"item": pa.array(mine, pa.binary())})
            for result in fn(iter([batch])):
                out.extend(zip(*(result.column(i).to_pylist() for i in range(result.num_columns)), strict=True))
        self.session.tamper(out)
        return _Frame(out, self.session)

    def collect(self) -> list[dict[str, Any]]:
        return [{"kind": kind, "body": body} for kind, body in self.rows]


class _Session:
    """Runs each partition's rows through the job's callable in this process (round-robin, as repartition)."""

    def __init__(self, tamper: Callable[[list[tuple[Any, ...]]], None] = lambda rows: None) -> None:
        self.sparkContext = _Context()
        self.tamper = tamper

    def createDataFrame(self, rows: list[tuple[Any, ...]], schema: str) -> _Frame:  # noqa: N802
        return _Frame(rows, self)


@pytest.fixture
def table(tmp_path: Path) -> Any:
    catalog = SqlCatalog("units", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file:{tmp_path}")
    catalog.create_namespace("n")
    t = catalog.create_table("n.t", pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())]))
    for start in (0, 50, 100):
        t.append(pa.table({"id": pa.array(range(start, start + 50), pa.int64()), "name": [f"n{i}" for i in range(50)]}))
    return t


def _compare(table: Any, executors: SparkExecutors | None) -> dict[str, Any]:
    snapshot = table.current_snapshot().snapshot_id
    results = compare(table, snapshot, table, byte_copy=True, default_levels=(1, 2, 3), levels=[4], executors=executors)
    return {r.comparator: r for r in results}


def test_the_driver_folds_the_executors_results_into_the_local_report(table: Any) -> None:
    session = _Session()
    remote = _compare(table, SparkExecutors(session, files_per_task=1))  # type: ignore[arg-type]
    local = _compare(table, None)
    for name in ("file-identity", "content-digest"):
        assert remote[name].passed and local[name].passed
        where = remote[name].details["executed_on"]
        assert where["code"] == "installed"  # this process imported icebridge from its own path, not the zip
        assert (where["where"], where["master"], where["tasks"]) == (
            "spark executors",
            "in-process",
            3 if name == "file-identity" else 6,
        )
        theirs = {k: v for k, v in remote[name].details.items() if k != "executed_on"}
        mine = {k: v for k, v in local[name].details.items() if k != "executed_on"}
        assert theirs == mine
    [shipped] = session.sparkContext.py_files  # once, however many jobs ran
    assert Path(shipped).name == f"icebridge-{code_fingerprint()[:16]}.zip"


def test_results_from_other_code_are_refused(table: Any) -> None:
    def other_code(rows: list[tuple[Any, ...]]) -> None:
        for i, (kind, body) in enumerate(rows):
            if kind == "task":
                rows[i] = (kind, json.dumps({**json.loads(body), "code": "0" * 64}))

    executors = SparkExecutors(_Session(other_code))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="ran other icebridge code than this process"):
        _compare(table, executors)


def test_a_file_reported_twice_is_refused(table: Any) -> None:
    def twice(rows: list[tuple[Any, ...]]) -> None:
        rows.extend([r for r in rows if r[0] == "result"][:1])

    executors = SparkExecutors(_Session(twice))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="did not report every file exactly once"):
        _compare(table, executors)


def test_an_executor_with_another_duckdb_computes_nothing(table: Any) -> None:
    files = SnapshotFiles(table, None)
    task = spark_exec._ExecutorTask(
        "content-digest",
        {
            "sides": [(dict(table.io.properties), table.metadata)],
            "schema": table.schema(),
            "spec": table.spec(),
            "reader": "auto",
            "batch_rows": 1024,
            "library": "duckdb 0.0.1 icebridge-rowhash-v3",
        },
        code_fingerprint(),
    )
    batch = pa.RecordBatch.from_pydict({"item": pa.array([pickle.dumps((0, t)) for t in files.tasks], pa.binary())})
    [out] = list(task(iter([batch])))
    rows = list(zip(out.column("kind").to_pylist(), out.column("body").to_pylist(), strict=True))
    assert [k for k, _ in rows] == ["task"]  # no result computed
    assert json.loads(rows[0][1])["library"] != "duckdb 0.0.1 icebridge-rowhash-v3"


def test_an_unreadable_file_comes_back_as_the_executors_error_naming_it(table: Any) -> None:
    files = SnapshotFiles(table, None)
    gone = files.tasks[0].data_file
    Path(gone.file_path.removeprefix("file:")).unlink()  # this test's own table
    task = spark_exec._ExecutorTask(
        "file-identity",
        {
            "source": dict(table.io.properties),
            "destination": dict(table.io.properties),
            "chunk_bytes": 1 << 20,
            "store_checksums": True,
        },
        code_fingerprint(),
    )
    batch = pa.RecordBatch.from_pydict({"item": pa.array([pickle.dumps((gone, gone))], pa.binary())})
    [out] = list(task(iter([batch])))
    kinds, bodies = out.column("kind").to_pylist(), out.column("body").to_pylist()
    assert kinds == ["error", "task"]
    assert gone.file_path in json.loads(bodies[0])["error"]


def test_the_shipped_zip_alone_gives_the_same_code_and_fingerprint(tmp_path: Path) -> None:
    path = spark_exec._code_zip()
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert {"icebridge/__init__.py", "icebridge/validation/spark_exec.py", "icebridge/validation/rowhash.py"} <= names
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import icebridge.validation.spark_exec as m; "
        "print(m.__file__); print(m.code_fingerprint())"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True, cwd=tmp_path, timeout=120
    )
    imported_from, fingerprint = done.stdout.split()
    assert imported_from.startswith(str(path))
    assert fingerprint == code_fingerprint()


def test_digests_from_another_row_hash_library_are_refused(table: Any) -> None:
    def other_duckdb(rows: list[tuple[Any, ...]]) -> None:
        for i, (kind, body) in enumerate(rows):
            report = json.loads(body)
            if kind == "task" and report["library"]:  # level 4's tasks say what hashed the rows
                rows[i] = (kind, json.dumps({**report, "library": "duckdb 0.0.1 icebridge-rowhash-v3"}))

    executors = SparkExecutors(_Session(other_duckdb))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="hashes rows with duckdb 0.0.1"):
        _compare(table, executors)
