"""``file-copy`` on the spark engine: the executors copy the data files, the driver commits their entries.

The driver does what needs the catalogs and the store, exactly as the local engine does and with its
code (``engines.local``): it groups the pinned snapshot's files into the same batches, gives each file
its deterministic target path, records the targets in the task's ledger before any byte is written, and
after the executors are done commits the batch's manifest entries — reused from the source's manifests
with the new paths — as one destination snapshot carrying the checkpoint markers. The executors only
copy bytes: every file is one row of a DataFrame whose ``mapInArrow`` calls ``storage.transfer`` with the
two tables' FileIO properties (server-side on S3 behind one endpoint, the kernel on local disks,
streamed otherwise) and returns the way each file went and its size.

Exactly once: a copy overwrites its deterministic target, so a task Spark runs again after losing an
executor copies the same bytes to the same place; the commit is made by the driver alone, once every
file of the batch is in place, from the source manifests, not from what the executors reported, so a
file copied twice is still committed once — and a batch committed before a crash is skipped on resume
because the destination's history names it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from icebridge.engines import BatchCommit, CopyJob, CopyResult
from icebridge.engines.local import LocalEngine, _check_specs, _not_ours, commit_copied, target_path
from icebridge.errors import CopyInterrupted, TerminalError, UnrecordedFileError
from icebridge.storage import file_size, same_bytes

if TYPE_CHECKING:
    from pyiceberg.table import FileScanTask
    from pyspark.sql import SparkSession

    from icebridge.engines.spark import SparkEngine

# rows per executor task: small enough that a lost executor costs little to redo
FILES_PER_TASK = 4


def copy(engine: SparkEngine, job: CopyJob, max_tasks: int | None = None) -> CopyResult:
    """Copy every batch of the pinned snapshot that the destination does not hold yet, on the executors.

    ``max_tasks`` caps the Spark tasks of a batch (default: one per ``FILES_PER_TASK`` files), so at most that
    many executor cores copy at once.
    """
    return _ExecutorCopy(engine, max_tasks).copy(job)


class _ExecutorCopy(LocalEngine):
    """The local engine's batch loop (resume, cancellation, timing, ``on_commit``) with each file-copy batch
    copied by the spark engine's executors. A table with delete files keeps the local engine's ordered copy
    (files committed in sequence-number order), made by the driver."""

    def __init__(self, spark: SparkEngine, max_tasks: int | None) -> None:
        super().__init__(spark._config)
        self._spark = spark
        self._max_tasks = max_tasks

    def _file_copy_batch(self, job: CopyJob, index: int, tasks: Sequence[FileScanTask]) -> BatchCommit:
        return _batch(self._spark, job, index, tasks, self._max_tasks)


def _batch(
    engine: SparkEngine, job: CopyJob, index: int, tasks: Sequence[FileScanTask], max_tasks: int | None = None
) -> BatchCommit:
    destination = job.destination
    destination.refresh()
    _check_specs(job)
    pairs = [(t.file, target_path(job, t.file.file_path)) for t in tasks]
    targets = [path for _file, path in pairs]
    sizes = [file_size(destination.io, path) for path in targets]
    foreign = _not_ours(job, targets, sizes)
    if job.ledger is not None:
        job.ledger.record(path for path in targets if path not in foreign)  # before the first byte
    todo = []
    for (data_file, target), existing in zip(pairs, sizes, strict=True):
        size = int(data_file.file_size_in_bytes)
        # a file an interrupted attempt copied whole is reused (by the stores' checksums where they have them)
        if existing == size and same_bytes(job.source.io, data_file.file_path, destination.io, target):
            job.on_progress(1, size)
            continue
        if target in foreign:
            raise UnrecordedFileError(
                f"{job.task}: {target} exists with other bytes and IceBridge did not write it; "
                "it is left untouched — move it away, or give the destination another location"
            )
        todo.append((data_file.file_path, target, size))
    if todo:
        ways = _copy_on_executors(engine, job, index, todo, max_tasks)
        job.on_progress(len(todo), sum(size for _s, _t, size in todo))
        job.on_event(
            "executor-copy",
            f"batch {index}: {len(todo)} file(s) copied by the executors ("
            + ", ".join(f"{n} {way}" for way, n in sorted(ways.items()))
            + ")",
            {"batch": index, "files": len(todo), "ways": ways},
        )
    if job.cancel is not None and job.cancel.is_set():
        raise CopyInterrupted(f"{job.task}: interrupted inside batch {index}; not committed")
    return commit_copied(job, index, pairs)


def _copy_on_executors(
    engine: SparkEngine, job: CopyJob, index: int, todo: list[tuple[str, str, int]], max_tasks: int | None = None
) -> dict[str, int]:
    """One Spark job copying ``todo`` (source, target, size) on the executors; how many files went each way."""
    session: SparkSession = engine.session()
    source_props = dict(job.source.io.properties)
    dest_props = dict(job.destination.io.properties)
    frame = session.createDataFrame(todo, "source string, target string, size long")
    partitions = max(1, min(-(-len(todo) // FILES_PER_TASK), max_tasks or len(todo)))
    copier = _Copier(source_props, dest_props)
    try:
        with engine._cancellable(session, job):
            rows = (
                frame.repartition(partitions)
                .mapInArrow(copier, "source string, way string, bytes long, seconds double")
                .collect()
            )
    except Exception as exc:
        if job.cancel is not None and job.cancel.is_set():
            raise CopyInterrupted(f"{job.task}: interrupted; batch {index} not committed") from exc
        raise engine._error(job, exc) from exc
    copied = {row["source"] for row in rows}
    missing = [s for s, _t, _n in todo if s not in copied]
    if missing:
        raise TerminalError(f"{job.task}: the executors did not report copying {missing[0]} (batch {index})")
    ways: dict[str, int] = {}
    for row in rows:
        ways[row["way"]] = ways.get(row["way"], 0) + 1
    return ways


class _Copier:
    """The executors' side: copy each row's file, and say how. Pickled to the executors with the FileIO
    properties of both tables (their storage credentials included, as the executors need them)."""

    def __init__(self, source_props: dict[str, Any], dest_props: dict[str, Any]) -> None:
        self.source_props = source_props
        self.dest_props = dest_props

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyiceberg.io import load_file_io

        from icebridge.storage import transfer

        ios: dict[str, Any] = {}

        def io_for(props: dict[str, Any], location: str) -> Any:
            key = f"{id(props)}:{location.split('://', 1)[0]}"
            if key not in ios:
                ios[key] = load_file_io(props, location)
            return ios[key]

        for batch in batches:
            out: dict[str, list[Any]] = {"source": [], "way": [], "bytes": [], "seconds": []}
            for source, target, size in zip(
                batch.column("source").to_pylist(),
                batch.column("target").to_pylist(),
                batch.column("size").to_pylist(),
                strict=True,
            ):
                started = time.perf_counter()
                copied = transfer(
                    io_for(self.source_props, source), source, io_for(self.dest_props, target), target, size
                )
                out["source"].append(source)
                out["way"].append(copied.way)
                out["bytes"].append(copied.bytes)
                out["seconds"].append(time.perf_counter() - started)
            yield pa.RecordBatch.from_pydict(out)
