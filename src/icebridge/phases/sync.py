"""Sync: replay the source's commits since the last synced snapshot, one destination commit each.

The destination's own history says where it stands: every commit IceBridge made for a task carries
``icebridge.task`` and ``icebridge.source-snapshot-id`` (a sync's also ``icebridge.replay``), so the
last synced source snapshot is read from the newest such commit, whatever the store says, and a
resumed sync commits no source snapshot twice. From there the source's lineage is walked by parent
ids up to its current snapshot; a lineage that does not reach back to the last synced snapshot
(rolled back, expired past it, or the table dropped and re-created) is a
:class:`~icebridge.errors.LineageBrokenError` naming the snapshot ids, and nothing is changed unless
a full reload is allowed (``icebridge sync --allow-reload``).

Each source commit becomes one destination commit with the same operation: under file-copy the file
delta is carried byte for byte (position deletes re-pointed at the destination's data-file paths,
equality deletes copied as they are); under rewrite, or where a file cannot be carried (a spec the
destination does not share), the partitions the commit touched are rewritten. The store keeps the
map from each source snapshot to the destination snapshot replaying it, and how.

Each destination commit is stamped with its source commit's time, so ``TIMESTAMP AS OF`` on the
destination reads what it reads on the source; a commit the destination's history forces later
(``engines.local.commit_time``) is *clamped*, and the outcome names the source snapshot from which time
travel by timestamp is exact again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from icebridge.engines import Batching, CopyJob
from icebridge.engines.local import FILE_COPY, REWRITE, FileDelta, full_delta, snapshot_delta
from icebridge.errors import CopyInterrupted, DestinationConflictError, LineageBrokenError, SyncUnsupportedError
from icebridge.events import Progress, SnapshotReplayed
from icebridge.model import Phase, TableRef
from icebridge.phases import (
    BATCH_KEY,
    REPLAY_KEY,
    SNAPSHOT_KEY,
    SOURCE_UUID_KEY,
    TASK_KEY,
    PhaseResult,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

    from icebridge.engines.local import LocalEngine
    from icebridge.engines.register import RegisterEngine
    from icebridge.phases import TableWork

FILE_COPY_MARK, RELOAD_MARK = "files", "reload"  # icebridge.replay values besides "rewrite" and "reference"
REGISTER = "register"  # by reference: the register engine commits the source's files at their own paths
REPLAYABLE = {FILE_COPY: FILE_COPY, REWRITE: REWRITE, "spark-sql": REWRITE, REGISTER: REGISTER}
MARKS = {FILE_COPY: FILE_COPY_MARK, REGISTER: "reference"}  # how commits replay, by strategy (else rewrite)


@dataclass(frozen=True)
class SyncedState:
    """Where a destination stands, read from its own history."""

    mark: int | None  # the source snapshot the destination is in step with (None: nothing carried yet)
    source_uuid: str | None  # the source table's uuid when it was last carried
    carried: dict[int, int]  # source snapshot id → destination snapshot id, for every commit of the task
    replays: dict[int, str]  # source snapshot id → how a sync replayed it (files, rewrite, reload)
    foreign: list[int]  # destination snapshots on the current lineage that IceBridge did not make


def synced_state(destination: Table, task: str) -> SyncedState:
    """Read the markers of the destination's current lineage, newest first."""
    mark: int | None = None
    source_uuid: str | None = None
    carried: dict[int, int] = {}
    replays: dict[int, str] = {}
    foreign: list[int] = []
    snapshot = destination.current_snapshot()
    while snapshot is not None:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(TASK_KEY) == task:
            source_id = int(summary[SNAPSHOT_KEY])
            if mark is None:
                mark = source_id
                source_uuid = summary.get(SOURCE_UUID_KEY)
            carried.setdefault(source_id, snapshot.snapshot_id)
            if REPLAY_KEY in summary:
                replays.setdefault(source_id, summary[REPLAY_KEY])
        elif mark is None:
            foreign.append(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = destination.snapshot_by_id(parent) if parent is not None else None
    return SyncedState(mark, source_uuid, carried, replays, foreign)


def lineage_since(source: Table, mark: int | None) -> tuple[list[Snapshot], str | None]:
    """The source snapshots after ``mark`` on its current lineage, oldest first, and why the lineage
    does not reach ``mark`` when it does not (None: it does, or ``mark`` is None)."""
    chain: list[Snapshot] = []
    snapshot = source.current_snapshot()
    while snapshot is not None and snapshot.snapshot_id != mark:
        chain.append(snapshot)
        parent = snapshot.parent_snapshot_id
        snapshot = source.snapshot_by_id(parent) if parent is not None else None
    chain.reverse()
    if mark is None or snapshot is not None:
        return chain, None
    current = source.current_snapshot()
    current_id = current.snapshot_id if current else None
    if source.snapshot_by_id(mark) is not None:
        return chain, (
            f"the source was rolled back: its current snapshot {current_id} does not descend from the last "
            f"synced snapshot {mark}"
        )
    return chain, (
        f"the last synced snapshot {mark} is no longer in the source (expired, or the table was re-created); "
        f"its current snapshot is {current_id}"
    )


def run(work: TableWork) -> PhaseResult:
    """Replay every source commit the destination does not hold yet, oldest first, each as one commit.

    The last synced source snapshot is read from the destination's history; commits found there but
    not in the store's snapshot map (a crash between the catalog commit and the store write) are
    settled into it first. With ``work.allow_reload``, a broken lineage is healed by one commit that
    replaces the destination's content with the source's current snapshot.
    """
    source, destination, task = work.require_source(), work.require_destination(), work.task
    source.refresh()
    destination.refresh()
    if task.strategy not in REPLAYABLE:  # its engine keeps its own markers: only "in step" can be told
        if _current_id(source) == task.source_snapshot_id:
            return PhaseResult(Phase(task.phase), "already done", {"replayed": 0})
        _engine(work)  # raises SyncUnsupportedError naming the strategy
    state = synced_state(destination, task.source)
    if state.foreign:
        raise DestinationConflictError(
            f"{task.source}: the destination has commits IceBridge did not make for this table "
            f"(snapshot ids {', '.join(map(str, state.foreign))}); sync would mix data — drop them or the table"
        )
    _settle(work, destination, state)
    mark = state.mark  # None: nothing carried yet (history all, or a source that had no snapshot)
    chain, broken = lineage_since(source, mark)
    if state.source_uuid is not None and state.source_uuid != str(source.metadata.table_uuid):
        broken = (
            f"the source table was dropped and re-created (table uuid {source.metadata.table_uuid}, synced from "
            f"{state.source_uuid}); its current snapshot is {_current_id(source)}"
        )
    if broken is not None:
        if not work.allow_reload:
            raise LineageBrokenError(
                f"{task.source}: {broken}; nothing was changed — run 'icebridge sync --allow-reload' to copy the "
                "table again in full"
            )
        return _reload(work, broken)
    if not chain:
        message = "already done" if mark is not None or _current_id(source) is None else "in step with the source"
        if mark != task.source_snapshot_id:
            work.advance(Phase(task.phase), source_snapshot_id=mark)
        return PhaseResult(Phase(work.task.phase), message, {"replayed": 0})
    engine, strategy = _engine(work)
    total = sum(_delta(source, s, first=(i == 0 and mark is None)).bytes for i, s in enumerate(chain))
    work.note("sync-started", f"{len(chain)} source commit(s) to replay after snapshot {mark}", bytes=total)
    ways: dict[str, int] = {}
    clamped: list[int] = []
    for index, snapshot in enumerate(chain):
        if work.cancel.is_set():
            raise CopyInterrupted(f"{task.source}: interrupted after replaying {index} source commit(s)")
        delta = _delta(source, snapshot, first=(index == 0 and mark is None))
        how, late = _replay(work, engine, strategy, snapshot, delta, MARKS.get(strategy, REWRITE))
        ways[how] = ways.get(how, 0) + 1
        if late:
            clamped.append(index)
    last = chain[-1].snapshot_id
    work.advance(Phase(work.task.phase), source_snapshot_id=last)
    said = ", ".join(f"{n} as {how}" for how, n in sorted(ways.items()))
    return PhaseResult(
        Phase(work.task.phase),
        f"synced to source snapshot {last}: {len(chain)} commit(s) replayed ({said}){_clamp_note(chain, clamped)}",
        {"replayed": len(chain), "keep": True, "clamped": len(clamped)},
    )


def _clamp_note(chain: list[Snapshot], clamped: list[int]) -> str:
    """What the outcome says of the commits stamped later than their source commits (nothing if none)."""
    if not clamped:
        return ""
    ids = ", ".join(str(chain[i].snapshot_id) for i in clamped[:5]) + (", ..." if len(clamped) > 5 else "")
    after = clamped[-1] + 1
    exact = (
        f"exact from source snapshot {chain[after].snapshot_id} on"
        if after < len(chain)
        else "exact again only from a later source commit"
    )
    return (
        f"; {len(clamped)} commit(s) stamped later than their source's time, the destination's history being "
        f"later already (source snapshots {ids}): time travel by timestamp is {exact}"
    )


def _delta(source: Table, snapshot: Snapshot, first: bool) -> FileDelta:
    """The commit's own file delta, or — for the first commit of a history whose parent is gone or
    that starts the replay — the snapshot's whole content."""
    if first:
        return full_delta(source, snapshot)
    return snapshot_delta(source, snapshot)


def _replay(
    work: TableWork,
    engine: LocalEngine | RegisterEngine,
    strategy: str,
    snapshot: Snapshot,
    delta: FileDelta,
    marker: str,
) -> tuple[str, bool]:
    """One source commit replayed as one destination commit marked ``marker``; recorded and announced.
    How it was replayed, and whether its commit time was clamped."""
    task = work.task
    source, destination = work.require_source(), work.require_destination()
    operation = str(snapshot.summary.operation.value) if snapshot.summary else "append"
    started = time.perf_counter()
    commit = engine.replay(_job(work, source, destination, strategy, snapshot.snapshot_id, marker), delta, operation)
    how = "reload" if marker == RELOAD_MARK else commit.how
    seconds = time.perf_counter() - started
    work.store.record_replay(
        task.id,
        work.scope.run_id,
        snapshot.snapshot_id,
        commit.dest_snapshot_id,
        operation,
        how,
        commit.files_added,
        commit.files_removed,
        commit.bytes,
        seconds,
    )
    work.publish(
        SnapshotReplayed(
            source_snapshot_id=snapshot.snapshot_id,
            dest_snapshot_id=commit.dest_snapshot_id,
            operation=operation,
            how=how,
            files_added=commit.files_added,
            files_removed=commit.files_removed,
            bytes=commit.bytes,
            seconds=round(seconds, 4),
        )
    )
    return how, commit.clamped


def _reload(work: TableWork, broken: str) -> PhaseResult:
    """Replace the destination's content with the source's current snapshot, in one commit."""
    source, task = work.require_source(), work.task
    current = source.current_snapshot()
    engine, strategy = _engine(work)
    if current is None:
        raise LineageBrokenError(f"{task.source}: {broken}; the source has no snapshot to reload from")
    work.note("reload", f"{task.source}: {broken}; reloading from source snapshot {current.snapshot_id}")
    delta = full_delta(source, current)
    _how, clamped = _replay(work, engine, strategy, current, delta, RELOAD_MARK)
    work.advance(Phase(work.task.phase), source_snapshot_id=current.snapshot_id)
    return PhaseResult(
        Phase(work.task.phase),
        f"reloaded in full from source snapshot {current.snapshot_id} ({broken})"
        + _clamp_note([current], [0] if clamped else []),
        {"replayed": 1, "keep": True},
    )


def _job(work: TableWork, source: Table, destination: Table, strategy: str, snapshot_id: int, marker: str) -> CopyJob:
    task = work.task
    settings = work.config.migrate
    return CopyJob(
        task=task.source,
        source_ref=TableRef.parse(task.source),
        destination_ref=TableRef.parse(task.destination),
        source=source,
        destination=destination,
        snapshot_id=snapshot_id,
        strategy=strategy,
        batching=Batching(files=settings.files_per_commit, bytes=settings.commit_bytes),
        chunk_bytes=settings.chunk_bytes,
        cancel=work.cancel,
        ledger=work.ledger,
        on_progress=lambda files, size: work.publish(Progress(phase=Phase.COPY, files=files, bytes=size)),
        on_event=lambda kind, message, data: work.note(kind, message, **data),
        summary_markers={
            TASK_KEY: task.source,
            SNAPSHOT_KEY: str(snapshot_id),
            REPLAY_KEY: marker,
            SOURCE_UUID_KEY: str(source.metadata.table_uuid),
        },
    )


def _engine(work: TableWork) -> tuple[LocalEngine | RegisterEngine, str]:
    """The engine that replays (the local one, or the run's fault-injecting stand-in) and its strategy."""
    from icebridge.engines.local import LocalEngine

    strategy = REPLAYABLE.get(work.task.strategy)
    if strategy is None:
        raise SyncUnsupportedError(
            f"{work.task.source}: strategy {work.task.strategy} keeps its own copy, which sync cannot replay "
            "commits onto; migrate the table with strategy file-copy or rewrite to keep it in step"
        )
    if strategy == REGISTER:
        from icebridge.engines.register import RegisterEngine

        registering = work.app.engine(REGISTER)
        if not isinstance(registering, RegisterEngine):
            raise AssertionError(f"the {registering.name} engine cannot replay commits by reference")
        return registering, strategy
    engine = work.app.engine(work.scope.engine if work.scope.engine == "faulty" else "local")
    if not isinstance(engine, LocalEngine):
        raise AssertionError(f"the {engine.name} engine cannot replay commits")
    return engine, strategy


def _settle(work: TableWork, destination: Table, state: SyncedState) -> None:
    """Record in the store's map every carried snapshot the destination holds and the store does not."""
    known = {r.source_snapshot_id for r in work.store.snapshot_map(work.task.id)}
    for source_id, dest_id in state.carried.items():
        if source_id in known:
            continue
        snapshot = destination.snapshot_by_id(dest_id)
        summary = snapshot.summary if snapshot is not None else None
        props = summary.additional_properties if summary is not None else {}
        how = state.replays.get(source_id, "copy")
        operation = str(summary.operation.value) if summary is not None else "append"
        if how == "copy" and BATCH_KEY in props:
            operation = "append"
        work.store.record_replay(work.task.id, work.scope.run_id, source_id, dest_id, operation, how)
        if how != "copy":
            work.note("settled", f"source snapshot {source_id} found replayed in the destination ({dest_id})")


def _current_id(source: Table) -> int | None:
    current = source.current_snapshot()
    return current.snapshot_id if current is not None else None
