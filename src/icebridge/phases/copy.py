"""Copy: move the pinned source snapshot into the destination, resuming from the destination's own history.

Every destination commit carries ``icebridge.task``, ``icebridge.source-snapshot-id`` and
``icebridge.batch`` in its snapshot summary. Before copying, the destination's snapshots are read:
the batches they name are done, whatever the state store says, so a batch is never committed twice
even when a crash came between the catalog commit and the store update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from icebridge.catalogs import snapshot_totals
from icebridge.engines import BatchCommit, Batching, CopyJob, engine_for, strategy_spec
from icebridge.errors import DestinationConflictError
from icebridge.events import BatchCommitted, Progress
from icebridge.model import Phase, Strategy, TableRef
from icebridge.phases import BATCH_KEY, BATCHING_KEY, REPLAY_KEY, SNAPSHOT_KEY, SOURCE_UUID_KEY, TASK_KEY, PhaseResult

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.phases import TableWork


@dataclass(frozen=True)
class DestinationProgress:
    """What the destination's history says was copied for one task."""

    source_snapshot_id: int | None
    batches: frozenset[int]
    batching: Batching | None
    synced: bool = False  # a sync has replayed commits since: the copy is complete


def destination_progress(destination: Table, task: str) -> DestinationProgress:
    """Read the checkpoint markers of every destination snapshot written for ``task``.

    Commits a sync made (``icebridge.replay``) follow a complete copy and are not batches of it.
    """
    snapshot_ids: set[int] = set()
    batches: set[int] = set()
    batchings: set[str] = set()
    synced = False
    for snapshot in destination.metadata.snapshots:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(TASK_KEY) != task:
            continue
        if REPLAY_KEY in summary:
            synced = True
            continue
        snapshot_ids.add(int(summary[SNAPSHOT_KEY]))
        batches.add(int(summary[BATCH_KEY]))
        if BATCHING_KEY in summary:
            batchings.add(summary[BATCHING_KEY])
    if len(snapshot_ids) > 1 or len(batchings) > 1:
        raise DestinationConflictError(
            f"{task}: the destination holds batches of several source snapshots {sorted(snapshot_ids)}; "
            "drop the destination table and migrate again"
        )
    foreign_commits = [
        s
        for s in destination.metadata.snapshots
        if not (s.summary and s.summary.additional_properties.get(TASK_KEY) == task)
    ]
    if foreign_commits:
        raise DestinationConflictError(
            f"{task}: the destination has {len(foreign_commits)} commit(s) not made by IceBridge for this table; "
            "refusing to mix data — drop it or map the source elsewhere"
        )
    return DestinationProgress(
        source_snapshot_id=next(iter(snapshot_ids), None),
        batches=frozenset(batches),
        batching=Batching.parse(next(iter(batchings))) if batchings else None,
        synced=synced,
    )


def run(work: TableWork) -> PhaseResult:
    """Copy every batch of the pinned snapshot that the destination does not hold yet, then sweep
    the files this task wrote that no commit references.

    Engines that write through this process's PyIceberg (local, spark) leave their checkpoints in
    snapshot summaries, read back here first: batches committed but not recorded before a crash are
    settled into the store, and none is committed twice. A remote engine (databricks) keeps its own
    markers on the destination and is told what the store recorded instead.

    The engine is the strategy's, or the one chosen for the run (``--engine``) when it carries the
    strategy too (the fault-injecting engine carries the local strategies).
    """
    source, destination, task = work.require_source(), work.require_destination(), work.task
    snapshot_id = work.snapshot_id
    if snapshot_id is None:
        work.advance(Phase.COPY)
        return PhaseResult(Phase.COPY, "nothing to copy: the source had no snapshot")
    size = snapshot_totals(source, snapshot_id)
    work.advance(Phase.COPY, files_total=size.files, bytes_total=size.bytes)
    spec = strategy_spec(task.strategy)
    destination.refresh()
    if history_of(work) == "all":
        return PhaseResult(Phase.COPY, "nothing copied: history all, sync replays every live source snapshot")
    if not spec.remote_markers and destination_progress(destination, task.source).synced:
        return PhaseResult(Phase.COPY, "copied before; sync has replayed source commits since")
    recorded = work.store.checkpoints(task.id, snapshot_id)
    if spec.remote_markers:
        progress = DestinationProgress(None, frozenset(c.batch for c in recorded), None)
    else:
        progress = destination_progress(destination, task.source)
        for batch in sorted(progress.batches - {c.batch for c in recorded}):  # committed, not recorded: a crash
            work.store.record_checkpoint(task.id, work.scope.run_id, snapshot_id, batch, None, 0, 0, 0)
            work.note("settled", f"batch {batch} found committed in the destination")
    if progress.source_snapshot_id not in (None, snapshot_id):
        raise DestinationConflictError(
            f"{task.source}: the destination holds a copy of source snapshot {progress.source_snapshot_id}, "
            f"not {snapshot_id}; drop the destination table and migrate again"
        )
    done = [c for c in recorded if c.batch in progress.batches]
    if done:  # what earlier attempts copied counts towards this table's progress
        work.publish(Progress(phase=Phase.COPY, files=sum(c.files for c in done), bytes=sum(c.bytes for c in done)))
    settings = work.config.migrate
    batching = progress.batching or Batching(files=settings.files_per_commit, bytes=settings.commit_bytes)

    def on_commit(commit: BatchCommit) -> None:
        work.store.record_checkpoint(
            task.id,
            work.scope.run_id,
            snapshot_id,
            commit.batch,
            commit.dest_snapshot_id,
            commit.files,
            commit.rows,
            commit.bytes,
            commit.seconds,
        )
        work.publish(
            BatchCommitted(
                batch=commit.batch,
                files=commit.files,
                rows=commit.rows,
                bytes=commit.bytes,
                seconds=commit.seconds,
                dest_snapshot_id=commit.dest_snapshot_id,
                source_snapshot_id=snapshot_id,
            )
        )

    job = CopyJob(
        task=task.source,
        source_ref=TableRef.parse(task.source),
        destination_ref=TableRef.parse(task.destination),
        source=source,
        destination=destination,
        snapshot_id=snapshot_id,
        strategy=Strategy(task.strategy),
        batching=batching,
        chunk_bytes=settings.chunk_bytes,
        committed_batches=progress.batches,
        on_commit=on_commit,
        on_progress=lambda files, size: work.publish(Progress(phase=Phase.COPY, files=files, bytes=size)),
        cancel=work.cancel,
        ledger=work.ledger,
        on_event=lambda kind, message, data: work.note(kind, message, **data),
        summary_markers={
            TASK_KEY: task.source,
            SNAPSHOT_KEY: str(snapshot_id),
            BATCHING_KEY: batching.marker(),
            SOURCE_UUID_KEY: str(source.metadata.table_uuid),
        },
    )
    result = work.app.engine(engine_for(task.strategy, preferred=work.scope.engine)).copy(job)
    if not spec.remote_markers:
        destination.refresh()
        removed = work.ledger.sweep(destination, referenced_files(destination))
        if removed:
            work.note(
                "orphans-removed",
                f"{len(removed)} file(s) this task wrote that no commit references were removed",
                files=removed[:100],
            )
    message = f"{result.batches_total} batches ({result.batches_skipped} already done), {result.rows} rows written"
    work.note("copied", message)
    return PhaseResult(Phase.COPY, message)


def history_of(work: TableWork) -> str:
    """The history the table's mapping rule asks for: ``current`` (the default) or ``all``."""
    rule = work.config.rule_for(TableRef.parse(work.task.source))
    return rule.history if rule is not None else "current"


def referenced_files(destination: Table) -> set[str]:
    """Every file a snapshot or metadata log entry of ``destination`` points at."""
    io = destination.io
    referenced = {destination.metadata_location}
    referenced.update(entry.metadata_file for entry in destination.metadata.metadata_log)
    for snapshot in destination.metadata.snapshots:
        referenced.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            referenced.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                referenced.add(entry.data_file.file_path)
    for stats in destination.metadata.statistics:
        referenced.add(stats.statistics_path)
    return referenced
