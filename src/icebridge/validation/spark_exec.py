"""Levels 3 and 4 on a Spark cluster's executors: the same per-file checks as in this process, spread over the files.

The driver (this process) lists both tables' files from their manifests and pairs them, exactly as the
local path does. Each file (level 3: each source/destination pair; level 4: each data file of either
side, with its delete files) becomes one row of a DataFrame whose ``mapInArrow`` — the DataFrame API's
``mapPartitions``, as the copy's executors use it — runs, on the executors, the very functions
the local path runs on its threads: :func:`icebridge.validation.identity.check_pair` (store checksums
or xxh3-128 of every byte) and :func:`icebridge.validation.digest.file_digests` (DuckDB's Parquet scan
or IceBridge's own reader, the ``icebridge-rowhash-v3`` row hash, per-partition count/sum/xor). Only the
small results come back: a :class:`~icebridge.validation.identity.FileCheck` per pair, a per-partition
``[count, sum, xor]`` per data file. The driver folds them with the local path's own code
(``identity_report``, ``merge_file_digests``), so the comparators compare and report exactly as they do
locally, and a table validated either way gives the same checksums and digests.

Same code on both sides, proven rather than assumed: when the engine starts its session it ships this
process's ``icebridge`` package to the executors as a zip (``SparkContext.addPyFile``), so a cluster
needs only icebridge's dependencies installed (pyiceberg, pyarrow, duckdb, xxhash) in the Python that
``PYSPARK_PYTHON`` names; the same venv on a local cluster works too. Every executor task reports a
fingerprint of the icebridge code it imported (sha-256 of the package's ``.py`` files) and its row-hash
library (DuckDB version and hash scheme); the driver refuses results computed by other code or another
DuckDB, since digests are comparable only when both match.

Each executor task reads its files one at a time with one DuckDB thread (a Spark task holds one core);
the parallelism is the cluster's. Executors read the files through FileIO built from the tables' FileIO
properties (storage credentials included, as the copy's executors get them). With a Spark Connect session
(``engines.spark.remote``) validation runs on the driver's threads: shipping the code through a Connect
session's artifacts is not built.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import json
import os
import pickle
import socket
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icebridge.errors import ValidationError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyspark.sql import SparkSession

    from icebridge.validation.digest import FileDigest
    from icebridge.validation.identity import FileCheck
    from icebridge.validation.reader import SnapshotFiles

__all__ = ["FILES_PER_TASK", "SparkExecutors", "code_fingerprint", "ship_code"]

# files per Spark task: small enough that a lost executor costs little to redo, large enough to amortise a task
FILES_PER_TASK = 4
_OUTPUT = "kind string, body string"
_LEVEL3 = "file-identity"
_LEVEL4 = "content-digest"


# --------------------------------------------------------------------------------------------------
# The code the executors run
# --------------------------------------------------------------------------------------------------


def _package_files() -> list[tuple[str, bytes]]:
    """Every ``.py`` file of the imported ``icebridge`` package: (path inside the package, bytes), sorted."""
    out: list[tuple[str, bytes]] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".py"):
                out.append((f"{prefix}{child.name}", child.read_bytes()))

    walk(importlib.resources.files("icebridge"), "")
    return sorted(out)


@functools.cache
def code_fingerprint() -> str:
    """sha-256 of the ``.py`` files of the ``icebridge`` package this process imported (zip or directory alike)."""
    h = hashlib.sha256()
    for name, data in _package_files():
        h.update(name.encode())
        h.update(b"\0")
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


_shipped: dict[str, str] = {}  # application id -> zip shipped to it
_ship_lock = threading.Lock()
_zip_path: Path | None = None


def _code_zip() -> Path:
    """This process's ``icebridge`` package as a zip (built once per process, named after its fingerprint)."""
    global _zip_path
    if _zip_path is None:
        folder = Path(tempfile.mkdtemp(prefix="icebridge-executor-code-"))
        path = folder / f"icebridge-{code_fingerprint()[:16]}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in _package_files():
                archive.writestr(f"icebridge/{name}", data)
        _zip_path = path
    return _zip_path


def ship_code(session: SparkSession) -> None:
    """Make this process's ``icebridge`` code the one the session's executors import (once per application).

    Called when the engine starts its (classic) session, before any executor task imports icebridge: a
    Python worker reused across tasks keeps the modules it imported first.
    """
    with _ship_lock:
        context = session.sparkContext
        key = str(context.applicationId)
        if key not in _shipped:
            path = _code_zip()
            context.addPyFile(str(path))
            _shipped[key] = str(path)


# --------------------------------------------------------------------------------------------------
# The driver's side
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Side:
    """One table's share of a level-4 job: its files as the driver listed them and its FileIO properties."""

    files: SnapshotFiles
    io_properties: dict[str, str]


class SparkExecutors:
    """Runs the per-file work of levels 3 and 4 on a SparkSession's executors (see the module's docstring).

    ``session`` is the session, or a function giving it when the first job needs it (the engine's
    ``session``: a validation that never reaches level 3 or 4 starts no Spark). ``max_tasks`` caps the
    Spark tasks of one job (default: one per ``files_per_task`` files), so at most that many executor cores
    work at once.
    """

    def __init__(
        self,
        session: SparkSession | Callable[[], SparkSession],
        max_tasks: int | None = None,
        files_per_task: int = FILES_PER_TASK,
    ) -> None:
        if files_per_task < 1 or (max_tasks is not None and max_tasks < 1):
            raise ValueError("files_per_task and max_tasks must be at least 1")
        self._session = session
        self.max_tasks = max_tasks
        self.files_per_task = files_per_task

    @property
    def session(self) -> SparkSession:
        """The session the jobs run on, with this process's icebridge shipped to its executors."""
        if callable(self._session):
            self._session = self._session()
        ship_code(self._session)
        return self._session

    # ------------------------------------------------------------------ level 3

    def check_files(
        self,
        source_io: FileIO,
        destination_io: FileIO,
        pairs: Sequence[tuple[DataFile, DataFile]],
        chunk_bytes: int,
        store_checksums: bool = True,
    ) -> tuple[list[FileCheck], dict[str, Any]]:
        """:func:`~icebridge.validation.identity.check_pair` of every pair, on the executors; and where it ran.

        Raises:
            ValidationError: a file cannot be read (the executor's error, naming it), or the executors
                could not run the job.
        """
        from icebridge.validation.identity import FileCheck

        context = {
            "source": dict(source_io.properties),
            "destination": dict(destination_io.properties),
            "chunk_bytes": chunk_bytes,
            "store_checksums": store_checksums,
        }
        rows, where = self._run(_LEVEL3, context, list(pairs))
        checks = [FileCheck(**body) for body in rows]
        _exactly_once(_LEVEL3, [s.file_path for s, _d in pairs], [c.source for c in checks])
        return checks, where

    # ------------------------------------------------------------------ level 4

    def digest_files(
        self, sides: Sequence[Side], schema: Schema, spec: PartitionSpec, reader: str, batch_rows: int = 131072
    ) -> tuple[list[tuple[list[FileDigest], int]], dict[str, Any]]:
        """:func:`~icebridge.validation.digest.file_digests` of every data file of each side, on the executors:
        per side, the files' contributions and how many DuckDB's scan read; and where it ran.

        Raises:
            ValidationError: a data file cannot be read (the executor's error, naming it), the executors
                hash with another library, or they could not run the job.
        """
        from icebridge.validation.digest import library_version

        context = {
            "sides": [(s.io_properties, s.files.metadata) for s in sides],
            "schema": schema,
            "spec": spec,
            "reader": reader,
            "batch_rows": batch_rows,
            "library": library_version(),
        }
        items = [(i, task) for i, side in enumerate(sides) for task in side.files.tasks]
        rows, where = self._run(_LEVEL4, context, items)
        out: list[tuple[list[FileDigest], int]] = []
        for i, side in enumerate(sides):
            by_path = {t.data_file.file_path: t for t in side.files.tasks}
            mine = [r for r in rows if r["side"] == i]
            _exactly_once(_LEVEL4, list(by_path), [r["file"] for r in mine])
            results: list[FileDigest] = [
                (by_path[r["file"]], {k: list(v) for k, v in r["parts"].items()}, dict(r["wrong"]), int(r["rows"]))
                for r in mine
            ]
            out.append((results, sum(1 for r in mine if r["scanned"])))
        return out, where

    # ------------------------------------------------------------------ the job

    def _tasks(self, items: int) -> int:
        wanted = -(-items // self.files_per_task)
        return max(1, min(wanted, self.max_tasks or wanted))

    def _run(self, kind: str, context: dict[str, Any], items: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One Spark job over ``items`` (one row each); the executors' results, and where the job ran."""
        where: dict[str, Any] = {"where": "spark executors", "master": self._master()}
        if not items:
            return [], {**where, "tasks": 0, "executors": self._executors(), "workers": [], "seconds": 0.0}
        partitions = self._tasks(len(items))
        frame = self.session.createDataFrame([(pickle.dumps(item),) for item in items], "item binary")
        task = _ExecutorTask(kind, context, code_fingerprint())
        started = time.monotonic()
        try:
            collected = frame.repartition(partitions).mapInArrow(task, _OUTPUT).collect()
        except Exception as exc:
            raise ValidationError(
                f"{kind}: the Spark executors could not run the check ({_first_line(exc)}); they need "
                "icebridge's dependencies (pyiceberg, pyarrow, duckdb, xxhash) in the Python that PYSPARK_PYTHON "
                "names, and access to both tables' storage"
            ) from exc
        seconds = round(time.monotonic() - started, 3)
        results: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        for row in collected:
            body = json.loads(row["body"])
            if row["kind"] == "result":
                results.append(body)
            elif row["kind"] == "task":
                reports.append(body)
            else:
                raise ValidationError(f"{kind} on a Spark executor: {body['error']}")
        for report in reports:
            if report["code"] != code_fingerprint():
                raise ValidationError(
                    f"{kind}: a Spark executor ({report['host']}) ran other icebridge code than this process "
                    f"(fingerprint {report['code'][:12]}, here {code_fingerprint()[:12]}): its Python worker had "
                    "imported icebridge before this session shipped it; start a new Spark application"
                )
            if kind == _LEVEL4 and report["library"] != context["library"]:
                raise ValidationError(
                    f"{kind}: a Spark executor ({report['host']}) hashes rows with {report['library']}, this "
                    f"process with {context['library']}: digests would not be comparable; install duckdb "
                    f"{context['library'].split()[1]} on the executors"
                )
        busy = [r for r in reports if r["items"]]
        shipped = _code_zip().name
        where.update(
            # "shipped": the executors imported the zip this process shipped; "installed": their own copy of
            # the same code (same fingerprint), imported before the zip was added or ahead of it
            code="shipped" if all(shipped in str(r.get("origin", "")) for r in reports) else "installed",
            tasks=len(busy),
            executors=self._executors(),
            workers=sorted({f"{r['host']}:{r['pid']}" for r in busy}),
            seconds=seconds,
        )
        return results, where

    def _master(self) -> str:
        return str(self.session.sparkContext.master)

    def _executors(self) -> int | None:
        """Executors registered with the application (the driver not counted; 0 in local mode, where the
        driver runs the tasks); None where Spark does not say."""
        context = self.session.sparkContext
        try:
            # the block managers of every executor and of the driver
            return int(context._jsc.sc().getExecutorMemoryStatus().size()) - 1
        except Exception:  # noqa: BLE001 - a JVM without that call: the count is only reported
            return None


def _exactly_once(kind: str, expected: list[str], got: list[str]) -> None:
    """Every file the driver listed came back once, and nothing else did."""
    if sorted(expected) != sorted(got):
        missing = sorted(set(expected) - set(got))
        extra = sorted({p for p in got if got.count(p) > 1} | (set(got) - set(expected)))
        raise ValidationError(
            f"{kind}: the Spark executors did not report every file exactly once "
            f"(missing {missing[:3]}, unexpected or repeated {extra[:3]})"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    # a PythonException carries the executor's traceback: its last line says what went wrong
    last = next((line for line in reversed(lines) if "Error" in line or "Exception" in line), lines[0])
    return last.strip()[:300]


# --------------------------------------------------------------------------------------------------
# The executors' side
# --------------------------------------------------------------------------------------------------


class _ExecutorTask:
    """One Spark task: the rows' files checked or digested with the local path's functions, results as JSON.

    Pickled to the executors with the job's context (both tables' FileIO properties, their metadata, the
    schema and spec). An error is returned as a row, so the driver reports the executor's message, not
    Spark's stack trace; a task always ends with a ``task`` row saying where it ran and with what code.
    """

    def __init__(self, kind: str, context: dict[str, Any], code: str) -> None:
        self.kind = kind
        self.context = context
        self.code = code

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        items = [pickle.loads(raw) for batch in batches for raw in batch.column("item").to_pylist()]
        kinds: list[str] = []
        bodies: list[str] = []
        library = ""
        try:
            if self.kind == _LEVEL4:
                from icebridge.validation.digest import library_version

                library = library_version()
                if library != self.context["library"]:
                    items = []  # the driver refuses this task's results: none is computed
                results = self._digests(items)
            else:
                results = self._checks(items)
            for body in results:
                kinds.append("result")
                bodies.append(json.dumps(body))
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which fails the level with it
            kinds, bodies = ["error"], [json.dumps({"error": f"{exc}", "type": type(exc).__name__})]
        kinds.append("task")
        bodies.append(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "items": len(items),
                    "code": code_fingerprint(),
                    "origin": __file__,
                    "library": library,
                }
            )
        )
        yield pa.RecordBatch.from_pydict({"kind": kinds, "body": bodies})

    def _checks(self, pairs: list[tuple[DataFile, DataFile]]) -> list[dict[str, Any]]:
        from icebridge.validation.identity import check_pair

        ios = _FileIOs()
        out = []
        for s, d in pairs:
            check = check_pair(
                ios.get("source", self.context["source"], s.file_path),
                ios.get("destination", self.context["destination"], d.file_path),
                s,
                d,
                int(self.context["chunk_bytes"]),
                None,
                bool(self.context["store_checksums"]),
            )
            out.append(dataclasses.asdict(check))
        return out

    def _digests(self, items: list[tuple[int, Any]]) -> list[dict[str, Any]]:
        from icebridge.validation.digest import file_digests
        from icebridge.validation.reader import SnapshotFiles

        ios = _FileIOs()
        by_side: dict[int, list[Any]] = {}
        for side, task in items:
            by_side.setdefault(side, []).append(task)
        out = []
        for side, tasks in sorted(by_side.items()):
            props, metadata = self.context["sides"][side]
            files = SnapshotFiles.of(ios.get(str(side), props, metadata.location), metadata, tasks)
            results, scanned = file_digests(
                files,
                tasks,
                self.context["schema"],
                self.context["spec"],
                workers=1,  # a Spark task holds one core
                batch_rows=int(self.context["batch_rows"]),
                reader=str(self.context["reader"]),
            )
            for n, (task, parts, wrong, rows) in enumerate(results):
                out.append(
                    {
                        "side": side,
                        "file": task.data_file.file_path,
                        "parts": parts,
                        "wrong": wrong,
                        "rows": rows,
                        "scanned": n < scanned,
                    }
                )
        return out


class _FileIOs:
    """FileIO per table side and scheme, built from the side's properties on first use."""

    def __init__(self) -> None:
        self._ios: dict[tuple[str, str], Any] = {}

    def get(self, side: str, props: dict[str, Any], location: str) -> Any:
        from pyiceberg.io import load_file_io

        key = (side, location.split("://", 1)[0] if "://" in location else "")
        if key not in self._ios:
            self._ios[key] = load_file_io(props, location)
        return self._ios[key]
