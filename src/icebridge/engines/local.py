"""The local engine: copies on this machine with PyIceberg and PyArrow.

``rewrite`` streams record batches of the pinned source snapshot (deletes applied) into new
Parquet files of the destination. Source data files are grouped into batches in a fixed order
(sorted by path); each batch becomes exactly one destination commit whose snapshot summary names
the batch, so a resumed copy skips what the destination already holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.table import FileScanTask

from icebridge.config import Config
from icebridge.engines import BatchCommit, CopyJob, CopyResult
from icebridge.errors import CommitConflictError, IceBridgeError, TerminalError
from icebridge.model import Strategy


class CopyInterrupted(IceBridgeError):
    """The run was asked to stop between two commits; what was committed stays committed."""

    transient = True


def source_batches(job: CopyJob) -> list[list[FileScanTask]]:
    """The pinned snapshot's scan tasks grouped into commit batches, in a stable order (sorted by path)."""
    tasks = sorted(job.source.scan(snapshot_id=job.snapshot_id).plan_files(), key=lambda t: t.file.file_path)
    return job.batching.group(tasks, lambda t: t.file.file_size_in_bytes)


class LocalEngine:
    """Copies in this process; memory is bounded by ``chunk_bytes`` whatever the table size."""

    name = "local"
    strategies = frozenset({Strategy.REWRITE})

    def __init__(self, config: Config | None = None) -> None:
        self._config = config

    def copy(self, job: CopyJob) -> CopyResult:
        """Copy every batch of the pinned snapshot that the destination does not hold yet."""
        if job.strategy not in self.strategies:
            raise TerminalError(f"{job.task}: the local engine cannot run strategy {job.strategy}")
        batches = source_batches(job)
        commits: list[BatchCommit] = []
        skipped = 0
        for index, tasks in enumerate(batches):
            if index in job.committed_batches:
                skipped += 1
                continue
            if job.cancel is not None and job.cancel.is_set():
                raise CopyInterrupted(f"{job.task}: interrupted after {len(commits)} commits")
            commit = self._rewrite_batch(job, index, tasks)
            job.on_commit(commit)
            commits.append(commit)
        return CopyResult(batches_total=len(batches), batches_skipped=skipped, commits=tuple(commits))

    def _read(self, job: CopyJob, tasks: Sequence[FileScanTask]) -> Iterator[pa.RecordBatch]:
        scan = ArrowScan(
            job.source.metadata, job.source.io, projected_schema=job.source.schema(), row_filter=AlwaysTrue()
        )
        return scan.to_record_batches(tasks)

    def _chunks(self, job: CopyJob, tasks: Sequence[FileScanTask]) -> Iterator[pa.Table]:
        """Record batches regrouped into tables of about ``chunk_bytes`` (the only data held in memory)."""
        buffered: list[pa.RecordBatch] = []
        size = 0
        for batch in self._read(job, tasks):
            if batch.num_rows == 0:
                continue
            buffered.append(batch)
            size += batch.nbytes
            if size >= job.chunk_bytes:
                yield pa.Table.from_batches(buffered)
                buffered, size = [], 0
        if buffered:
            yield pa.Table.from_batches(buffered)

    def _rewrite_batch(self, job: CopyJob, index: int, tasks: Sequence[FileScanTask]) -> BatchCommit:
        markers = {**job.summary_markers, "icebridge.batch": str(index)}
        destination = job.destination
        destination.refresh()
        rows = files = size = 0
        try:
            with destination.transaction() as txn:
                with txn.update_snapshot(snapshot_properties=markers).fast_append() as append:
                    counter = itertools.count(0)
                    for chunk in self._chunks(job, tasks):
                        if job.cancel is not None and job.cancel.is_set():
                            raise CopyInterrupted(f"{job.task}: interrupted inside batch {index}; not committed")
                        for data_file in _dataframe_to_data_files(
                            table_metadata=txn.table_metadata,
                            df=chunk,
                            io=destination.io,
                            write_uuid=append.commit_uuid,
                            counter=counter,
                        ):
                            append.append_data_file(data_file)
                            rows += data_file.record_count
                            files += 1
                            size += data_file.file_size_in_bytes
        except CommitFailedException as exc:
            raise CommitConflictError(f"{job.task}: destination commit of batch {index} conflicted: {exc}") from exc
        snapshot = destination.current_snapshot()
        return BatchCommit(
            batch=index,
            dest_snapshot_id=snapshot.snapshot_id if snapshot else None,
            files=files,
            rows=rows,
            bytes=size,
        )
