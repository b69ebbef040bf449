"""Copy: move the pinned source snapshot into the destination, resuming from the destination's own history.

Every destination commit carries ``icebridge.task``, ``icebridge.source-snapshot-id`` and
``icebridge.batch`` in its snapshot summary. Before copying, the destination's snapshots are read:
the batches they name are done, whatever the state store says, so a batch is never committed twice
even when a crash came between the catalog commit and the store update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from icebridge.engines import BatchCommit, Batching, Cancel, CopyJob, CopyResult, engine_for, strategy_spec
from icebridge.errors import DestinationConflictError
from icebridge.model import TableRef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import Context
    from icebridge.ledger import FileLedger
    from icebridge.store import TaskRow

TASK_KEY = "icebridge.task"
SNAPSHOT_KEY = "icebridge.source-snapshot-id"
BATCH_KEY = "icebridge.batch"
BATCHING_KEY = "icebridge.batching"


@dataclass(frozen=True)
class DestinationProgress:
    """What the destination's history says was copied for one task."""

    source_snapshot_id: int | None
    batches: frozenset[int]
    batching: Batching | None


def destination_progress(destination: Table, task: str) -> DestinationProgress:
    """Read the checkpoint markers of every destination snapshot written for ``task``."""
    snapshot_ids: set[int] = set()
    batches: set[int] = set()
    batchings: set[str] = set()
    for snapshot in destination.metadata.snapshots:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(TASK_KEY) != task:
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
    )


def run(
    ctx: Context,
    task: TaskRow,
    source: Table,
    destination: Table,
    snapshot_id: int,
    strategy: str,
    on_commit: Callable[[BatchCommit], None] | None = None,
    cancel: Cancel | None = None,
    ledger: FileLedger | None = None,
    engine: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> CopyResult:
    """Copy every batch of ``snapshot_id`` the destination does not hold yet, then sweep the task's leftovers.

    The strategy's engine does the copy (``engine``, the one chosen for the run, when it carries the
    strategy). Engines that write through this process's PyIceberg (local, spark) leave their
    checkpoints in snapshot summaries, read back here. A strategy whose spec says ``remote_markers``
    (databricks) keeps its own markers on the destination and is told what the store recorded instead.
    """
    destination.refresh()
    remote = strategy_spec(strategy).remote_markers
    if remote:
        recorded = frozenset(c.batch for c in ctx.store.checkpoints(task.id, snapshot_id))
        progress = DestinationProgress(source_snapshot_id=None, batches=recorded, batching=None)
    else:
        progress = destination_progress(destination, task.source)
    if progress.source_snapshot_id not in (None, snapshot_id):
        raise DestinationConflictError(
            f"{task.source}: the destination holds a copy of source snapshot {progress.source_snapshot_id}, "
            f"not {snapshot_id}; drop the destination table and migrate again"
        )
    settings = ctx.config.migrate
    batching = progress.batching or Batching(files=settings.files_per_commit, bytes=settings.commit_bytes)
    job = CopyJob(
        task=task.source,
        source_ref=TableRef.parse(task.source),
        destination_ref=TableRef.parse(task.destination),
        source=source,
        destination=destination,
        snapshot_id=snapshot_id,
        strategy=strategy,
        batching=batching,
        chunk_bytes=ctx.config.migrate.chunk_bytes,
        committed_batches=progress.batches,
        on_commit=on_commit or (lambda _c: None),
        on_progress=on_progress or (lambda _files, _bytes: None),
        on_event=on_event or (lambda _kind, _message, _data: None),
        cancel=cancel if cancel is not None else ctx.cancel,
        ledger=ledger,
        summary_markers={
            TASK_KEY: task.source,
            SNAPSHOT_KEY: str(snapshot_id),
            BATCHING_KEY: batching.marker(),
        },
    )
    result = ctx.engine(engine_for(strategy, preferred=engine)).copy(job)
    if remote or ledger is None:
        return result
    destination.refresh()
    removed = ledger.sweep(destination, referenced_files(destination))
    if removed:
        ctx.store.event(
            "orphans-removed",
            f"{len(removed)} file(s) this task wrote that no commit references were removed",
            run_id=ctx.run_id,
            task_id=task.id,
            data={"files": removed[:100]},
        )
    return result


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
