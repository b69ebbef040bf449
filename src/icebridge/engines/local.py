"""The local engine: copies on this machine with PyIceberg and PyArrow.

- ``file-copy`` copies the pinned snapshot's data files byte for byte (streamed, in parallel) to
  deterministic paths under the destination's data location, then commits their manifest entries
  (partition, counts, column stats, sizes) reused with the new paths: nothing is decoded.
- ``rewrite`` streams record batches of the pinned snapshot (deletes applied) into new Parquet files.
- ``replay`` (sync) carries one source commit as one destination commit: under file-copy its file
  delta byte for byte (position deletes re-pointed at the destination's paths, equality deletes as
  they are); under rewrite, or where the file delta cannot be carried, the partitions it touched
  are rewritten from the source snapshot.

Either way, source data files are grouped into batches in a fixed order (sorted by path); each batch
becomes exactly one destination commit whose snapshot summary names the batch, so a resumed copy
skips what the destination already holds.

Every destination commit carries the commit time of the source snapshot it copies or replays
(:func:`commit_time`), so ``AS OF <timestamp>`` on the destination answers what it answers on the
source; where the destination's own log is already later, the commit is stamped just after it and
its summary says so (``icebridge.timestamp-clamped``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import posixpath
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io import load_file_io
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestEntryStatus
from pyiceberg.table import FileScanTask

from icebridge.catalogs import warehouse_location
from icebridge.engines import BaseEngine, BatchCommit, CatalogAccess, CopyJob, CopyResult, StrategySpec
from icebridge.engines._pyiceberg import (
    ReplayTransaction,
    multi_spec_append,
    relocated,
    replay_files,
    rewrite_position_deletes,
    stream_scan,
    write_data_files,
)
from icebridge.errors import CommitConflictError, CopyInterrupted, IceBridgeError, TerminalError, UnrecordedFileError
from icebridge.events import FileCopied
from icebridge.model import Finding, PlanItem, Severity, TableFacts, TableRef
from icebridge.storage import Copied, delete_file, file_size, same_bytes, transfer

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot


FILE_COPY = "file-copy"
REWRITE = "rewrite"
COPY_WORKERS = 4
PROBE_BYTES = b"icebridge storage probe\n"


def source_batches(job: CopyJob) -> list[list[FileScanTask]]:
    """The pinned snapshot's scan tasks grouped into commit batches, in a stable order (sorted by path)."""
    tasks = sorted(job.source.scan(snapshot_id=job.snapshot_id).plan_files(), key=lambda t: t.file.file_path)
    return job.batching.group(tasks, lambda t: t.file.file_size_in_bytes)


def delete_ordered_batches(job: CopyJob) -> list[tuple[str, list[DataFile]]] | None:
    """The pinned snapshot's data and delete files as commit batches that keep the order of their
    sequence numbers (operation, files), or None when it has no delete file (the plain batches apply).

    Batches never mix two sequence numbers or two kinds of file, and are at most ``batching`` large.
    """
    snapshot = job.source.snapshot_by_id(job.snapshot_id)
    if snapshot is None:
        return None
    entries = [
        entry
        for manifest in snapshot.manifests(job.source.io)
        for entry in manifest.fetch_manifest_entry(job.source.io, discard_deleted=True)
    ]
    if all(e.data_file.content == DataFileContent.DATA for e in entries):
        return None
    rank = {DataFileContent.EQUALITY_DELETES: 0, DataFileContent.DATA: 1, DataFileContent.POSITION_DELETES: 2}
    groups: dict[tuple[int, int], list[DataFile]] = {}
    for entry in entries:
        key = (entry.sequence_number or 0, rank[entry.data_file.content])
        groups.setdefault(key, []).append(entry.data_file)
    batches: list[tuple[str, list[DataFile]]] = []
    for (_seq, kind), files in sorted(groups.items()):
        operation = "append" if kind == 1 else "delete"
        files.sort(key=lambda f: f.file_path)
        batches += [(operation, group) for group in job.batching.group(files, lambda f: f.file_size_in_bytes)]
    return batches


class LocalEngine(BaseEngine):
    """Copies in this process; memory is bounded by ``chunk_bytes`` whatever the table size."""

    name = "local"
    specs: ClassVar[tuple[StrategySpec, ...]] = (
        StrategySpec(FILE_COPY, "local", byte_copy=True, validation_levels=(1, 2, 3)),
        StrategySpec(REWRITE, "local", byte_copy=False, validation_levels=(1, 2, 4)),
    )
    strategies = frozenset({FILE_COPY, REWRITE})

    # ------------------------------------------------------------------ planning

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """file-copy for Parquet (its delete files carried), rewrite for anything else."""
        if not facts.current_snapshot_id:
            return FILE_COPY, "file-copy: no snapshot, only the table is created"
        reasons = []
        if facts.delete_files and facts.format_version >= 3:
            reasons.append(f"{facts.delete_files} delete file(s) of a v3 table (deletion vectors are not carried)")
        non_parquet = [f for f in facts.file_formats if f != "PARQUET"]
        if non_parquet:
            reasons.append(f"{'/'.join(non_parquet)} data files are re-encoded as Parquet")
        if reasons:
            return REWRITE, "rewrite: " + "; ".join(reasons)
        if facts.delete_files:
            return FILE_COPY, (
                f"file-copy: Parquet copied byte for byte with its {facts.delete_files} delete file(s) "
                f"({facts.position_delete_files} position delete file(s) re-pointed at the destination's paths, "
                f"{facts.equality_delete_files} equality delete file(s) copied as they are)"
            )
        return FILE_COPY, "file-copy: plain Parquet without delete files, copied byte for byte, nothing decoded"

    def strategy_findings(self, table: str, facts: TableFacts, strategy: str) -> list[Finding]:
        """file-copy carries no ORC/Avro and no v3 deletion vectors; rewrite's reader applies no equality deletes."""
        out: list[Finding] = []
        vectors = facts.delete_files and facts.format_version >= 3
        if strategy == FILE_COPY and (vectors or set(facts.file_formats) - {"PARQUET"}):
            out.append(
                Finding(
                    table,
                    Severity.BLOCKER,
                    "file-copy-unsupported",
                    f"file-copy cannot carry this table (format v{facts.format_version}, {facts.delete_files} "
                    f"delete file(s), formats {', '.join(facts.file_formats)})",
                    "use strategy rewrite for this table (remove 'strategy: file-copy' from its mapping rule)",
                )
            )
        if strategy == REWRITE and facts.equality_delete_files:
            out.append(
                Finding(
                    table,
                    Severity.BLOCKER,
                    "equality-deletes",
                    f"{facts.equality_delete_files} equality delete file(s): the local reader cannot apply them",
                    "use strategy file-copy, which carries them as they are, or compact the source table "
                    "(rewrite_data_files) first",
                )
            )
        return out

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """A small object written, read back and deleted where each destination table will live."""
        return storage_probe(items, catalogs)

    # ------------------------------------------------------------------ copy

    def copy(self, job: CopyJob) -> CopyResult:
        """Copy every batch of the pinned snapshot that the destination does not hold yet."""
        self.check_strategy(job)
        if job.strategy == FILE_COPY:
            ordered = delete_ordered_batches(job)
            if ordered is not None:
                return self._copy_with_deletes(job, ordered)
        batches = source_batches(job)
        if job.strategy == FILE_COPY:
            return self._batches(job, len(batches), lambda j, i: self._file_copy_batch(j, i, batches[i]))
        return self._batches(job, len(batches), lambda j, i: self._rewrite_batch(j, i, batches[i]))

    def _batches(self, job: CopyJob, count: int, commit_batch: Callable[[CopyJob, int], BatchCommit]) -> CopyResult:
        """Commit batches ``0 .. count-1`` in order, skipping those the destination holds already.

        Each batch's job names the number of batches (``icebridge.batches``), from which its commit time
        is told (:func:`commit_time`)."""
        job = dataclasses.replace(job, summary_markers={**job.summary_markers, BATCHES_KEY: str(count)})
        commits: list[BatchCommit] = []
        skipped = 0
        for index in range(count):
            if index in job.committed_batches:
                skipped += 1
                continue
            if job.cancel is not None and job.cancel.is_set():
                raise CopyInterrupted(f"{job.task}: interrupted after {len(commits)} commits")
            started = time.perf_counter()
            commit = dataclasses.replace(commit_batch(job, index), seconds=time.perf_counter() - started)
            job.on_commit(commit)
            commits.append(commit)
        return CopyResult(batches_total=count, batches_skipped=skipped, commits=tuple(commits))

    def _copy_with_deletes(self, job: CopyJob, batches: list[tuple[str, list[DataFile]]]) -> CopyResult:
        """A byte copy of a table with delete files: its files committed in the order of their sequence
        numbers, so every delete applies on the destination to exactly the rows it applied to on the source.

        Within one source sequence number, its equality deletes come first (they apply only to older
        data), then its data files, then its position deletes (they apply to data up to their own).
        """
        _check_specs(job)

        def commit_batch(job: CopyJob, index: int) -> BatchCommit:
            operation, files = batches[index]
            batch_job = dataclasses.replace(job, summary_markers={**job.summary_markers, "icebridge.batch": str(index)})
            done = self._replay_files(batch_job, FileDelta(tuple(files), ()), operation)
            return BatchCommit(index, done.dest_snapshot_id, done.files_added, done.rows, done.bytes)

        return self._batches(job, len(batches), commit_batch)

    def _read(self, job: CopyJob, tasks: Sequence[FileScanTask]) -> Iterator[pa.RecordBatch]:
        scan = ArrowScan(
            job.source.metadata, job.source.io, projected_schema=job.source.schema(), row_filter=AlwaysTrue()
        )
        return stream_scan(scan, tasks)

    def _chunks(self, job: CopyJob, tasks: Sequence[FileScanTask]) -> Iterator[pa.Table]:
        """Record batches regrouped into tables of about ``chunk_bytes`` (the only data held in memory)."""
        return regroup(self._read(job, tasks), job.chunk_bytes)

    def _rewrite_batch(self, job: CopyJob, index: int, tasks: Sequence[FileScanTask]) -> BatchCommit:
        destination = job.destination
        destination.refresh()
        markers, timestamp = stamped_markers(job, {**job.summary_markers, "icebridge.batch": str(index)})
        written: list[DataFile] = []
        try:
            with destination.transaction() as txn:
                with multi_spec_append(txn, markers, timestamp) as append:
                    counter = itertools.count(0)
                    for chunk in self._chunks(job, tasks):
                        if job.cancel is not None and job.cancel.is_set():
                            raise CopyInterrupted(f"{job.task}: interrupted inside batch {index}; not committed")
                        for data_file in write_data_files(
                            txn.table_metadata, chunk, destination.io, append.commit_uuid, counter
                        ):
                            written.append(data_file)
                            append.append_data_file(data_file)
                            job.on_progress(1, data_file.file_size_in_bytes)
        except BaseException as exc:
            # the files of an uncommitted attempt have random names: remove them now so none is orphaned
            for data_file in written:
                _forget(destination.io, data_file.file_path)
            if isinstance(exc, CommitFailedException):
                raise CommitConflictError(f"{job.task}: destination commit of batch {index} conflicted: {exc}") from exc
            raise
        return _commit_result(job, index, written)

    def _file_copy_batch(self, job: CopyJob, index: int, tasks: Sequence[FileScanTask]) -> BatchCommit:
        destination = job.destination
        destination.refresh()
        _check_specs(job)
        pairs = [(t.file, target_path(job, t.file.file_path)) for t in tasks]
        targets = [path for _file, path in pairs]
        with ThreadPoolExecutor(max_workers=min(COPY_WORKERS, len(pairs) or 1)) as pool:
            sizes = list(pool.map(lambda path: file_size(job.destination.io, path), targets))
            foreign = _not_ours(job, targets, sizes)
            if job.ledger is not None:
                job.ledger.record(path for path in targets if path not in foreign)  # before the first byte
            copies = [(df, path, size, path in foreign) for (df, path), size in zip(pairs, sizes, strict=True)]
            list(pool.map(lambda args: self._copy_one(job, *args), copies))
        if job.cancel is not None and job.cancel.is_set():
            raise CopyInterrupted(f"{job.task}: interrupted inside batch {index}; not committed")
        return commit_copied(job, index, pairs)

    def _copy_one(self, job: CopyJob, source_file: DataFile, target: str, existing: int | None, foreign: bool) -> None:
        if job.cancel is not None and job.cancel.is_set():
            return
        size = source_file.file_size_in_bytes
        # a file copied by an interrupted run is reused when complete and byte-identical
        if existing == size and same_bytes(job.source.io, source_file.file_path, job.destination.io, target):
            job.on_progress(1, size)
            return
        if foreign:
            raise UnrecordedFileError(
                f"{job.task}: {target} exists with other bytes and IceBridge did not write it; "
                "it is left untouched — move it away, or give the destination another location"
            )
        copied = transfer(job.source.io, source_file.file_path, job.destination.io, target, size)
        _report_copy(job, target, copied)
        job.on_progress(1, size)

    # ------------------------------------------------------------------ sync

    def replay(self, job: CopyJob, delta: FileDelta, operation: str) -> ReplayCommit:
        """Carry one source commit (``job.snapshot_id``, whose file changes are ``delta``) as one commit.

        Under file-copy the delta is carried file for file; under rewrite — or when a file's partition
        spec differs between the tables, or its format is not Parquet — the partitions it touched are
        rewritten from the source snapshot (all of them when the delta replaces the whole table).
        """
        destination = job.destination
        destination.refresh()
        if job.strategy == FILE_COPY and _carriable(job, delta):
            return self._replay_files(job, delta, operation)
        return self._replay_rewrite(job, delta, operation)

    def _replay_files(self, job: CopyJob, delta: FileDelta, operation: str) -> ReplayCommit:
        destination = job.destination
        removed = {target_path(job, f.file_path) for f in delta.removed}
        if delta.full:
            removed = {f.file_path for f in live_files(destination, destination.current_snapshot())}
        data = [f for f in delta.added if f.content == DataFileContent.DATA]
        equality = [f for f in delta.added if f.content == DataFileContent.EQUALITY_DELETES]
        positions = [f for f in delta.added if f.content == DataFileContent.POSITION_DELETES]
        copied = data + equality
        pairs = [(f, target_path(job, f.file_path)) for f in copied]
        targets = [path for _file, path in pairs] + [target_path(job, f.file_path) for f in positions]
        with ThreadPoolExecutor(max_workers=min(COPY_WORKERS, len(targets) or 1)) as pool:
            sizes = list(pool.map(lambda path: file_size(destination.io, path), targets))
            foreign = _not_ours(job, targets, sizes)
            if job.ledger is not None:
                job.ledger.record(path for path in targets if path not in foreign)  # before the first byte
            copied_sizes = sizes[: len(pairs)]
            copies = [(df, path, size, path in foreign) for (df, path), size in zip(pairs, copied_sizes, strict=True)]
            list(pool.map(lambda args: self._copy_one(job, *args), copies))
        for target in targets[len(pairs) :]:
            if target in foreign:
                raise UnrecordedFileError(
                    f"{job.task}: {target} exists and IceBridge did not write it; it is left untouched — move it "
                    "away, or give the destination another location"
                )
        if job.cancel is not None and job.cancel.is_set():
            raise CopyInterrupted(f"{job.task}: interrupted inside the replay of snapshot {job.snapshot_id}")
        version = destination.metadata.format_version
        sort_ids = _sort_order_map(job)
        files = [relocated(df, path, version, sort_ids.get(df.sort_order_id)) for df, path in pairs]
        for df in positions:
            target = target_path(job, df.file_path)
            size, lower, upper = rewrite_position_deletes(
                job.source.io, df.file_path, destination.io, target, lambda p: target_path(job, p)
            )
            moved = relocated(
                df,
                target,
                version,
                None,
                file_size_in_bytes=size,
                lower_bounds={**(df.lower_bounds or {}), **lower},
                upper_bounds={**(df.upper_bounds or {}), **upper},
                split_offsets=None,
            )
            files.append(moved)
            job.on_progress(1, size)
        return self._commit_replay(job, operation, files, removed, "files")

    def _replay_rewrite(self, job: CopyJob, delta: FileDelta, operation: str) -> ReplayCommit:
        """Rewrite what the commit touched: its added files alone for a plain append, else its partitions.

        A commit adding equality deletes touches the partitions of its delete files (all of the table for
        a delete file of an unpartitioned spec): those are rewritten from the source snapshot with every
        delete applied. PyIceberg's scan cannot apply equality deletes, so while the source snapshot holds
        any, its rows are read by IceBridge's own reader (``validation.reader``), which applies them by
        the spec's sequence-number rules.
        """
        source, destination = job.source, job.destination
        snapshot = source.snapshot_by_id(job.snapshot_id)
        data_files, read = _source_reader(self, job, snapshot)
        current = destination.current_snapshot()
        dest_files = [f for f in live_files(destination, current) if f.content == DataFileContent.DATA]
        plain_append = (
            not delta.full and not delta.removed and all(f.content == DataFileContent.DATA for f in delta.added)
        )
        touched: set[tuple[int, tuple[object, ...]]] | None = None
        if plain_append:
            added = {f.file_path for f in delta.added}
            todo, removed = [f for f in data_files if f.file_path in added], set()
        else:
            touched = _partitions_touched(job, delta)
            if touched is None:  # the whole table: a spec change, a full replacement
                todo, removed = data_files, {f.file_path for f in dest_files}
            else:
                todo = [f for f in data_files if (f.spec_id, _key(f)) in touched]
                removed = {f.file_path for f in dest_files if (f.spec_id, _key(f)) in touched}
        equality = [f for f in delta.added if f.content == DataFileContent.EQUALITY_DELETES]
        if equality:
            scope = "the whole table" if touched is None else f"{len(touched)} partition(s)"
            job.on_event(
                "equality-deletes-rewritten",
                f"{job.task}: source snapshot {job.snapshot_id} adds {len(equality)} equality delete file(s); "
                f"{scope} rewritten from it with the deletes applied",
                {"source_snapshot_id": job.snapshot_id, "delete_files": len(equality), "scope": scope},
            )
        written: list[DataFile] = []
        scratch = destination.transaction()
        counter = itertools.count(0)
        write_uuid = uuid.uuid4()
        try:
            for chunk in regroup(read(sorted(todo, key=lambda f: f.file_path)), job.chunk_bytes):
                if job.cancel is not None and job.cancel.is_set():
                    raise CopyInterrupted(f"{job.task}: interrupted inside the replay of snapshot {job.snapshot_id}")
                for data_file in write_data_files(scratch.table_metadata, chunk, destination.io, write_uuid, counter):
                    written.append(data_file)
                    job.on_progress(1, data_file.file_size_in_bytes)
            return self._commit_replay(job, operation, written, removed, "rewrite")
        except BaseException:
            for data_file in written:
                _forget(destination.io, data_file.file_path)
            raise

    def _commit_replay(
        self, job: CopyJob, operation: str, files: list[DataFile], removed: set[str], how: str
    ) -> ReplayCommit:
        destination = job.destination
        markers, timestamp = stamped_markers(job, dict(job.summary_markers))
        try:
            with ReplayTransaction(destination) as txn:
                with replay_files(txn, operation, markers, removed, timestamp) as commit:
                    for data_file in files:
                        commit.add_file(data_file)
        except CommitFailedException as exc:
            raise CommitConflictError(
                f"{job.task}: destination commit replaying source snapshot {job.snapshot_id} conflicted: {exc}"
            ) from exc
        snapshot = destination.current_snapshot()
        return ReplayCommit(
            dest_snapshot_id=snapshot.snapshot_id if snapshot else None,
            how=how,
            files_added=len(files),
            files_removed=len(removed),
            bytes=sum(f.file_size_in_bytes for f in files),
            rows=sum(f.record_count for f in files if f.content == DataFileContent.DATA),
            clamped=CLAMPED_KEY in markers,
        )


@dataclass(frozen=True)
class FileDelta:
    """What one source commit changed, file by file (data and delete files)."""

    added: tuple[DataFile, ...]
    removed: tuple[DataFile, ...]
    full: bool = False  # ``added`` is the snapshot's whole content and replaces everything the destination holds

    @property
    def bytes(self) -> int:
        return sum(f.file_size_in_bytes for f in self.added)


@dataclass(frozen=True)
class ReplayCommit:
    """The destination commit that replays one source commit."""

    dest_snapshot_id: int | None
    how: str  # files | rewrite
    files_added: int
    files_removed: int
    bytes: int
    rows: int
    clamped: bool = False  # stamped later than its source commit (the destination's log was already later)


SOURCE_TIME_KEY = "icebridge.source-timestamp-ms"  # the source snapshot's own commit time
CLAMPED_KEY = "icebridge.timestamp-clamped"  # present when the commit is stamped later than its source's
BATCHES_KEY = "icebridge.batches"  # how many commits a bulk copy of one source snapshot makes


@dataclass(frozen=True)
class CommitTime:
    """When a destination commit says it happened, and why (see :func:`commit_time`)."""

    timestamp_ms: int  # what the destination snapshot carries
    wanted_ms: int  # what it would carry if the destination's log allowed it
    source_ms: int  # the source snapshot's commit time

    @property
    def clamped(self) -> bool:
        return self.timestamp_ms != self.wanted_ms


def commit_time(job: CopyJob, markers: dict[str, str]) -> CommitTime | None:
    """The commit time of the destination commit of ``job`` marked ``markers`` (None: its source snapshot
    is gone, and the commit takes the clock's).

    A commit replaying source snapshot S is stamped with S's ``timestamp-ms``, so ``AS OF`` a time on the
    destination resolves to the snapshot replaying the source snapshot current at that time. A bulk copy
    of S in ``n`` commits (batch ``i`` of ``icebridge.batches``) stamps them ``S - (n-1-i)`` ms: the last,
    complete one at exactly S's time, and each strictly after the one before, which PyIceberg needs (a
    commit stamped with the table's own ``last-updated-ms`` is re-stamped with the wall clock).

    The destination's history must stay ordered: Iceberg Java refuses a snapshot-log entry, and a
    ``last-updated-ms``, more than a minute before the previous one (when it commits, on a REST server,
    and when it reads the metadata a PyIceberg catalog wrote). So a commit is never stamped before the
    destination's ``last-updated-ms`` or its last snapshot-log entry: it is then stamped 1 ms after
    them (*clamped*; a source clock that went backwards, or a destination changed after the source
    commit), and time travel by timestamp is exact only from the next source commit stamped as its own.
    """
    snapshot = job.source.snapshot_by_id(job.snapshot_id)
    if snapshot is None:
        return None
    index, count = int(markers.get("icebridge.batch", 0)), int(markers.get(BATCHES_KEY, 1))
    wanted = snapshot.timestamp_ms - max(0, count - 1 - index)
    metadata = job.destination.metadata
    floor = max([metadata.last_updated_ms, *(e.timestamp_ms for e in metadata.snapshot_log[-1:])])
    return CommitTime(max(wanted, floor + 1), wanted, snapshot.timestamp_ms)


def stamped_markers(job: CopyJob, markers: dict[str, str]) -> tuple[dict[str, str], int | None]:
    """``markers`` with the source commit's time (and the clamp, if any) added, and the commit time to
    stamp the snapshot with; a clamp is reported as a ``timestamp-clamped`` event."""
    when = commit_time(job, markers)
    if when is None:
        return markers, None
    out = {**markers, SOURCE_TIME_KEY: str(when.source_ms)}
    if when.clamped:
        out[CLAMPED_KEY] = str(when.timestamp_ms - when.wanted_ms)  # how many ms later than wanted
        job.on_event(
            "timestamp-clamped",
            f"{job.task}: the commit of source snapshot {job.snapshot_id} is stamped {when.timestamp_ms}, "
            f"{when.timestamp_ms - when.wanted_ms} ms after its source's time {when.wanted_ms}, since the "
            "destination's history is already later; time travel by timestamp is exact only from the next "
            "source commit stamped with its own time",
            {
                "source_snapshot_id": job.snapshot_id,
                "timestamp_ms": when.timestamp_ms,
                "source_timestamp_ms": when.wanted_ms,
            },
        )
    return out, when.timestamp_ms


def snapshot_delta(table: Table, snapshot: Snapshot) -> FileDelta:
    """The files ``snapshot`` added and removed: the entries it wrote into the manifests it added."""
    added: list[DataFile] = []
    removed: list[DataFile] = []
    for manifest in snapshot.manifests(table.io):
        if manifest.added_snapshot_id != snapshot.snapshot_id:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
            if entry.snapshot_id != snapshot.snapshot_id:
                continue
            if entry.status == ManifestEntryStatus.ADDED:
                added.append(entry.data_file)
            elif entry.status == ManifestEntryStatus.DELETED:
                removed.append(entry.data_file)
    return FileDelta(tuple(added), tuple(removed))


def full_delta(table: Table, snapshot: Snapshot) -> FileDelta:
    """The whole content of ``snapshot``, replacing whatever the destination holds."""
    return FileDelta(tuple(live_files(table, snapshot)), (), full=True)


def live_files(table: Table, snapshot: Snapshot | None) -> list[DataFile]:
    """Every live data and delete file of ``snapshot`` (none for no snapshot)."""
    if snapshot is None:
        return []
    return [
        entry.data_file
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    ]


def regroup(batches: Iterable[pa.RecordBatch], chunk_bytes: int) -> Iterator[pa.Table]:
    """Record batches regrouped into tables of about ``chunk_bytes`` (the only data held in memory)."""
    buffered: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        buffered.append(batch)
        size += batch.nbytes
        if size >= chunk_bytes:
            yield pa.Table.from_batches(buffered)
            buffered, size = [], 0
    if buffered:
        yield pa.Table.from_batches(buffered)


def _has_equality_deletes(table: Table, snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` holds a live equality-delete file (only its delete manifests are read)."""
    return any(
        entry.data_file.content == DataFileContent.EQUALITY_DELETES
        for manifest in snapshot.manifests(table.io)
        if manifest.content == ManifestContent.DELETES
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    )


def _source_reader(
    engine: LocalEngine, job: CopyJob, snapshot: Snapshot | None
) -> tuple[list[DataFile], Callable[[Sequence[DataFile]], Iterator[pa.RecordBatch]]]:
    """The live data files of the job's source snapshot, and a reader of some of them, deletes applied:
    PyIceberg's scan, or IceBridge's own reader where the snapshot holds equality deletes."""
    if snapshot is None:
        return [], lambda _files: iter(())
    if not _has_equality_deletes(job.source, snapshot):
        tasks = {t.file.file_path: t for t in job.source.scan(snapshot_id=snapshot.snapshot_id).plan_files()}
        return [t.file for t in tasks.values()], lambda files: engine._read(job, [tasks[f.file_path] for f in files])
    from icebridge.validation.reader import SnapshotFiles

    source_files = SnapshotFiles(job.source, snapshot.snapshot_id)
    by_path = {t.data_file.file_path: t for t in source_files.tasks}
    schema = job.source.schema()

    def read(files: Sequence[DataFile]) -> Iterator[pa.RecordBatch]:
        for data_file in files:
            yield from source_files.read(by_path[data_file.file_path], schema)

    return [t.data_file for t in source_files.tasks], read


def _carriable(job: CopyJob, delta: FileDelta) -> bool:
    """Whether every added file can be carried byte for byte (Parquet, under a spec both tables share)."""
    source_specs, dest_specs = job.source.metadata.specs(), job.destination.metadata.specs()
    for data_file in delta.added:
        dest = dest_specs.get(data_file.spec_id)
        if dest is None or dest.fields != source_specs[data_file.spec_id].fields:
            return False
        if str(data_file.file_format).upper().rsplit(".", 1)[-1] != "PARQUET":
            return False
    return True


def _key(data_file: DataFile) -> tuple[object, ...]:
    return tuple(data_file.partition[i] for i in range(len(data_file.partition)))


def _partitions_touched(job: CopyJob, delta: FileDelta) -> set[tuple[int, tuple[object, ...]]] | None:
    """(spec id, partition) of every file the commit added or removed; None: the whole table must be
    rewritten (a full replacement, an unpartitioned table, or files under a spec other than the
    destination's current one, which a rewrite writes into)."""
    if delta.full:
        return None
    spec = job.destination.spec()
    if spec.is_unpartitioned():
        return None
    source_spec = job.source.metadata.specs().get(spec.spec_id)
    if source_spec is None or source_spec.fields != spec.fields:
        return None
    touched = set()
    for data_file in (*delta.added, *delta.removed):
        if data_file.spec_id != spec.spec_id:
            return None
        touched.add((data_file.spec_id, _key(data_file)))
    return touched


def commit_copied(job: CopyJob, index: int, pairs: Sequence[tuple[DataFile, str]]) -> BatchCommit:
    """Commit batch ``index``: each source file's manifest entry with its copy's path, one snapshot carrying
    the checkpoint markers (the spark engine's file-copy commits through this too)."""
    destination = job.destination
    markers, timestamp = stamped_markers(job, {**job.summary_markers, "icebridge.batch": str(index)})
    version = destination.metadata.format_version
    sort_ids = _sort_order_map(job)
    files = [relocated(df, path, version, sort_ids.get(df.sort_order_id)) for df, path in pairs]
    try:
        with destination.transaction() as txn:
            with multi_spec_append(txn, markers, timestamp) as append:
                for data_file in files:
                    append.append_data_file(data_file)
    except CommitFailedException as exc:
        # the copied files keep their deterministic names: the retry finds and reuses them
        raise CommitConflictError(f"{job.task}: destination commit of batch {index} conflicted: {exc}") from exc
    return _commit_result(job, index, files)


def _report_copy(job: CopyJob, target: str, copied: Copied) -> None:
    """Keep in the run's event log which way one file's bytes went (see ``icebridge.storage.WAYS``)."""
    event = FileCopied(table=job.task, path=target, way=copied.way, bytes=copied.bytes)
    job.on_event(event.kind, event.message(), {"path": event.path, "way": event.way, "bytes": event.bytes})


def target_path(job: CopyJob, source_path: str) -> str:
    """Where a byte-copied file lands: the same relative path under the destination's data folder.

    Deterministic, so a retried copy overwrites instead of duplicating; files outside the source's
    data folder get a name derived from their full path.
    """
    source_data = job.source.properties.get("write.data.path", f"{job.source.metadata.location.rstrip('/')}/data")
    dest_data = f"{job.destination.metadata.location.rstrip('/')}/data"
    prefix = source_data.rstrip("/") + "/"
    if source_path.startswith(prefix):
        return f"{dest_data}/{source_path[len(prefix) :]}"
    digest = hashlib.sha256(source_path.encode()).hexdigest()[:16]
    return f"{dest_data}/external/{digest}-{posixpath.basename(source_path)}"


def _not_ours(job: CopyJob, targets: list[str], sizes: list[int | None]) -> set[str]:
    """Targets that exist already and that this task did not write: never recorded, so never deleted."""
    present = [path for path, size in zip(targets, sizes, strict=True) if size is not None]
    if job.ledger is None or not present:
        return set()
    return set(present) - job.ledger.owned(present)


def _check_specs(job: CopyJob) -> None:
    source_specs = job.source.metadata.specs()
    dest_specs = job.destination.metadata.specs()
    for spec_id, spec in source_specs.items():
        dest = dest_specs.get(spec_id)
        if dest is not None and dest.fields != spec.fields:
            raise TerminalError(
                f"{job.task}: destination partition spec {spec_id} differs from the source's; "
                "drop the destination table and migrate again so it is scaffolded with the source's specs"
            )


def _sort_order_map(job: CopyJob) -> dict[int | None, int | None]:
    """Source sort order id → destination id with the same fields (unknown orders become None)."""
    out: dict[int | None, int | None] = {}
    for src in job.source.metadata.sort_orders:
        match = next((d.order_id for d in job.destination.metadata.sort_orders if d.fields == src.fields), None)
        out[src.order_id] = match
    return out


def _commit_result(job: CopyJob, index: int, files: Sequence[DataFile]) -> BatchCommit:
    snapshot = job.destination.current_snapshot()
    return BatchCommit(
        batch=index,
        dest_snapshot_id=snapshot.snapshot_id if snapshot else None,
        files=len(files),
        rows=sum(f.record_count for f in files),
        bytes=sum(f.file_size_in_bytes for f in files),
    )


def _forget(io: object, path: str) -> None:
    try:
        delete_file(io, path)  # type: ignore[arg-type]
    except IceBridgeError:
        pass  # the orphan sweep at the end of the copy removes it


# ------------------------------------------------------------------------------------------ pre-flight


def storage_root(catalogs: CatalogAccess, dest: TableRef) -> str | None:
    """Where new destination tables will be written: the namespace location, the catalog's warehouse,
    or — for a REST server that decides locations itself — the folder it would put the table in."""
    catalog = catalogs.get(dest.catalog)
    try:
        if catalog.namespace_exists(dest.namespace):
            location = catalog.load_namespace_properties(dest.namespace).get("location")
            if location:
                return str(location).rstrip("/")
    except Exception:  # an unreadable namespace is the namespace check's finding; fall back to the warehouse
        pass
    warehouse = warehouse_location(catalog)  # a REST catalog's 'warehouse' may be a catalog name
    if warehouse:
        return warehouse.rstrip("/")
    planned = catalogs.planned_location(dest)
    return planned.rstrip("/").rsplit("/", 1)[0] if planned else None


def storage_probe(items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
    """Write, read back and delete a small object where each destination table will live (once per place)."""
    findings: list[Finding] = []
    cache: dict[str, list[Finding]] = {}
    for item in items:
        if item.destination is None:
            continue
        dest = item.destination
        table = str(item.source)
        root = storage_root(catalogs, dest)
        if root is None and not catalogs.places_tables(dest.catalog):
            findings.append(
                Finding(
                    table,
                    Severity.INFO,
                    "storage-chosen-by-server",
                    f"catalog {dest.catalog!r} is a REST catalog whose server chooses table locations; "
                    f"its storage is first written when {dest} is created",
                )
            )
            continue
        if root is None:
            findings.append(
                Finding(
                    table,
                    Severity.WARNING,
                    "storage-unknown",
                    f"catalog {dest.catalog!r} has no warehouse location to probe",
                    "set 'warehouse' in the catalog's properties",
                )
            )
            continue
        if root not in cache:
            cache[root] = _probe(catalogs.get(dest.catalog), root)
        findings.extend(Finding(table, f.severity, f.code, f.message, f.fix) for f in cache[root])
    return findings


def _probe(catalog: Catalog, root: str) -> list[Finding]:
    path = f"{root}/.icebridge-probe-{uuid.uuid4().hex}"
    try:
        io = load_file_io({**catalog.properties}, root)
        with io.new_output(path).create(overwrite=True) as out:
            out.write(PROBE_BYTES)
        with io.new_input(path).open() as stream:
            if stream.read() != PROBE_BYTES:
                raise OSError("read back different bytes")
        io.delete(path)
    except Exception as exc:
        return [
            Finding(
                "",
                Severity.BLOCKER,
                "storage-not-writable",
                f"destination storage {root} is not writable: {exc}",
                "grant write access to the warehouse location or change the catalog's 'warehouse'",
            )
        ]
    return []
