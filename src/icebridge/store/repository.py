"""The state store: short transactions over the SQL tables, returning frozen rows (never ORM objects).

Every verb opens its own transaction, so one ``Store`` can be shared by several worker threads.
Task status changes are conditional on the task's ``version`` (optimistic locking): a worker that
holds a stale version gets a ``StateError`` instead of overwriting another worker's change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from icebridge.errors import LeaseLostError, StaleTaskError, StateError, TaskHeldError
from icebridge.locations import normalize
from icebridge.model import Finding, Phase, Severity, Status, TableFacts
from icebridge.store.models import (
    Checkpoint,
    CutoverStep,
    Event,
    FindingRecord,
    Inventory,
    Run,
    SnapshotMap,
    Task,
    Validation,
    WrittenFile,
    utcnow,
)

RUN_KINDS = frozenset({"inventory", "preflight", "plan", "migrate", "sync", "cutover", "rollback", "validate", "demo"})
RUN_STATUSES = frozenset({"queued", "running", "succeeded", "failed", "interrupted"})
FINISHED_STATUSES = frozenset({"succeeded", "failed", "interrupted"})
ERROR_KINDS = frozenset({"terminal", "transient"})
ADVANCE_FIELDS = frozenset({"source_snapshot_id", "rows", "bytes"})
READ_ONLY = "icebridge_read_only"  # execution option of the store's read-only transactions


@dataclass(frozen=True)
class RunRow:
    """One command invocation."""

    id: int
    kind: str
    status: str
    config_path: str
    args: dict[str, Any]
    summary: dict[str, Any]
    report_path: str | None
    started_at: datetime
    finished_at: datetime | None
    owner: str | None = None
    heartbeat_at: datetime | None = None
    request: dict[str, Any] | None = None  # the request a server accepted (None: a CLI run)
    started_by: str | None = None
    cancel_requested_at: datetime | None = None
    outcomes: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish, or None while the run is going on."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class TaskRow:
    """One source table's migration task."""

    id: int
    source: str
    destination: str
    strategy: str
    reason: str
    phase: Phase
    status: Status
    error: str | None
    error_kind: str | None
    run_id: int | None
    version: int
    attempts: int
    source_snapshot_id: int | None
    rows: int
    bytes: int
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    archived_metadata_location: str | None
    archived_at: datetime | None
    owner: str | None = None
    lease_until: datetime | None = None
    claimed_at: datetime | None = None
    work_seconds: float = 0.0  # time spent holding the task, summed over every claim
    estimate_seconds: float | None = None  # the plan's estimate of its copy
    estimate_engine: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish of the last attempt, or None if it has not both started and ended."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class SnapshotMapRow:
    """One source snapshot a destination holds, and the destination snapshot that carries it."""

    task_id: int
    run_id: int | None
    source_snapshot_id: int
    dest_snapshot_id: int | None
    operation: str
    how: str  # files | rewrite | copy
    files_added: int
    files_removed: int
    bytes: int
    seconds: float | None
    created_at: datetime


@dataclass(frozen=True)
class CutoverStepRow:
    """One step of a table's cut-over procedure."""

    task_id: int
    run_id: int | None
    step: str
    status: str  # started | done
    details: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class CheckpointRow:
    """One committed copy batch."""

    id: int
    task_id: int
    run_id: int | None
    source_snapshot_id: int
    batch: int
    dest_snapshot_id: int | None
    files: int
    rows: int
    bytes: int
    created_at: datetime
    seconds: float | None = None


@dataclass(frozen=True)
class FindingRow:
    """A recorded pre-flight or plan finding."""

    id: int
    run_id: int
    table: str
    severity: Severity
    code: str
    message: str
    fix: str
    created_at: datetime

    def to_finding(self) -> Finding:
        """The domain value this row was recorded from."""
        return Finding(self.table, self.severity, self.code, self.message, self.fix)


@dataclass(frozen=True)
class ValidationRow:
    """One comparator's outcome."""

    id: int
    task_id: int
    run_id: int | None
    level: int
    comparator: str
    passed: bool
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    """One log event."""

    id: int
    ts: datetime
    run_id: int | None
    task_id: int | None
    kind: str
    message: str
    data: dict[str, Any] | None
    actor: str | None = None  # who did it: the run's user, else the OS user of the process that logged it
    before: dict[str, Any] | None = None  # the table's state as the previous entry left it
    after: dict[str, Any] | None = None  # the table's state after this step


# What of a task's row the audit log keeps before and after each step (None values left out).
AUDIT_STATE = ("phase", "status", "source_snapshot_id", "archived_metadata_location", "error")


def _state_of(task: Task) -> dict[str, Any]:
    return {k: v for k in AUDIT_STATE if (v := getattr(task, k)) is not None}


def local_actor() -> str:
    """The operating-system user of this process and its host, the actor of work no API user asked for."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        import os

        user = f"uid {os.getuid()}"
    return f"{user} on {socket.gethostname()}"


def _run_row(r: Run) -> RunRow:
    return RunRow(
        id=r.id,
        kind=r.kind,
        status=r.status,
        config_path=r.config_path,
        args=dict(r.args or {}),
        summary=dict(r.summary or {}),
        report_path=r.report_path,
        started_at=r.started_at,
        finished_at=r.finished_at,
        owner=r.owner,
        heartbeat_at=r.heartbeat_at,
        request=dict(r.request) if r.request is not None else None,
        started_by=r.started_by,
        cancel_requested_at=r.cancel_requested_at,
        outcomes=[dict(o) for o in r.outcomes] if r.outcomes is not None else None,
    )


def _task_row(t: Task) -> TaskRow:
    return TaskRow(
        id=t.id,
        source=t.source,
        destination=t.destination,
        strategy=t.strategy,
        reason=t.reason,
        phase=Phase(t.phase),
        status=Status(t.status),
        error=t.error,
        error_kind=t.error_kind,
        run_id=t.run_id,
        version=t.version,
        attempts=t.attempts,
        source_snapshot_id=t.source_snapshot_id,
        rows=t.rows,
        bytes=t.bytes,
        started_at=t.started_at,
        finished_at=t.finished_at,
        updated_at=t.updated_at,
        archived_metadata_location=t.archived_metadata_location,
        archived_at=t.archived_at,
        owner=t.owner,
        lease_until=t.lease_until,
        claimed_at=t.claimed_at,
        work_seconds=float(t.work_seconds or 0.0),
        estimate_seconds=t.estimate_seconds,
        estimate_engine=t.estimate_engine,
    )


def _checkpoint_row(c: Checkpoint) -> CheckpointRow:
    return CheckpointRow(
        id=c.id,
        task_id=c.task_id,
        run_id=c.run_id,
        source_snapshot_id=c.source_snapshot_id,
        batch=c.batch,
        dest_snapshot_id=c.dest_snapshot_id,
        files=c.files,
        rows=c.rows,
        bytes=c.bytes,
        created_at=c.created_at,
        seconds=c.seconds,
    )


def _map_row(m: SnapshotMap) -> SnapshotMapRow:
    return SnapshotMapRow(
        task_id=m.task_id,
        run_id=m.run_id,
        source_snapshot_id=m.source_snapshot_id,
        dest_snapshot_id=m.dest_snapshot_id,
        operation=m.operation,
        how=m.how,
        files_added=m.files_added,
        files_removed=m.files_removed,
        bytes=m.bytes,
        seconds=m.seconds,
        created_at=m.created_at,
    )


def _step_row(c: CutoverStep) -> CutoverStepRow:
    return CutoverStepRow(
        task_id=c.task_id,
        run_id=c.run_id,
        step=c.step,
        status=c.status,
        details=dict(c.details or {}),
        started_at=c.started_at,
        finished_at=c.finished_at,
    )


def _finding_row(f: FindingRecord) -> FindingRow:
    return FindingRow(
        id=f.id,
        run_id=f.run_id,
        table=f.table_name,
        severity=Severity(f.severity),
        code=f.code,
        message=f.message,
        fix=f.fix,
        created_at=f.created_at,
    )


def _validation_row(v: Validation) -> ValidationRow:
    return ValidationRow(
        id=v.id,
        task_id=v.task_id,
        run_id=v.run_id,
        level=v.level,
        comparator=v.comparator,
        passed=bool(v.passed),
        details=dict(v.details or {}),
        created_at=v.created_at,
    )


def _event_row(e: Event) -> EventRow:
    return EventRow(
        id=e.id,
        ts=e.ts,
        run_id=e.run_id,
        task_id=e.task_id,
        kind=e.kind,
        message=e.message,
        data=dict(e.data) if e.data is not None else None,
        actor=e.actor,
        before=dict(e.before) if e.before is not None else None,
        after=dict(e.after) if e.after is not None else None,
    )


def _path_key(path: str) -> str:
    return hashlib.sha256(normalize(path).encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _clock(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "an unknown time"


def _fresh_task(s: Session, task_id: int) -> Task:
    """Re-read a task inside the session, overwriting whatever the identity map holds."""
    return s.execute(select(Task).where(Task.id == task_id).execution_options(populate_existing=True)).scalar_one()


class Store:
    """The IceBridge state store. Build it with ``icebridge.store.open_store(url)``."""

    def __init__(self, engine: Engine, display_url: str | None = None) -> None:
        """Wrap an engine whose database is already migrated to head."""
        self._engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)
        # readers that change nothing: on SQLite they never wait for the write lock (the service's
        # polls and streams read while a copy writes)
        self._read = sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        self.url = display_url or engine.url.render_as_string(hide_password=True)
        self._local_actor = local_actor()

    def __enter__(self) -> Store:
        """Use the store as a context manager that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()

    def close(self) -> None:
        """Dispose the engine and its connections."""
        self._engine.dispose()

    # ----------------------------------------------------------------- runs

    def start_run(
        self,
        kind: str,
        config_path: str,
        args: dict[str, Any],
        owner: str | None = None,
        started_by: str | None = None,
    ) -> RunRow:
        """Record the start of a command invocation (status 'running'), by ``owner`` (a process)."""
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; expected one of {sorted(RUN_KINDS)}")
        with self._session.begin() as s:
            run = Run(
                kind=kind,
                status="running",
                config_path=str(config_path),
                args=dict(args),
                summary={},
                started_at=utcnow(),
                owner=owner,
                heartbeat_at=utcnow(),
                started_by=started_by,
            )
            s.add(run)
            s.flush()
            return _run_row(run)

    def finish_run(
        self, run_id: int, status: str, summary: dict[str, Any], outcomes: Sequence[dict[str, Any]] | None = None
    ) -> RunRow:
        """Record how a run ended, its summary and (when given) how each of its tables ended."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {sorted(RUN_STATUSES)}")
        with self._session.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StateError(f"no run {run_id} in the state store at {self.url}")
            run.status = status
            run.summary = dict(summary)
            run.finished_at = utcnow()
            if outcomes is not None:
                run.outcomes = [dict(o) for o in outcomes]
            s.flush()
            return _run_row(run)

    # ------------------------------------------------------- runs a server accepted

    def queue_run(
        self, kind: str, config_path: str, args: dict[str, Any], request: dict[str, Any], started_by: str | None
    ) -> RunRow:
        """Record a run a server accepted but has not started (status 'queued'), with its request."""
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; expected one of {sorted(RUN_KINDS)}")
        with self._session.begin() as s:
            run = Run(
                kind=kind,
                status="queued",
                config_path=str(config_path),
                args=dict(args),
                summary={},
                started_at=utcnow(),
                request=dict(request),
                started_by=started_by,
            )
            s.add(run)
            s.flush()
            return _run_row(run)

    def claim_run(self, run_id: int, owner: str, take_from: str | None = None) -> RunRow | None:
        """Take an accepted run for ``owner`` (a process): one conditional update, so one claimant wins.

        A queued run is claimed as it is; with ``take_from``, a run still recorded as running under that
        owner (a server that stopped) is taken over. None when another claimant was first.
        """
        now = utcnow()
        if take_from is None:
            condition = Run.status == "queued"
        else:
            condition = and_(Run.status == "running", Run.owner == take_from)
        with self._session.begin() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.request.is_not(None), condition)
                    .values(status="running", owner=owner, heartbeat_at=now, finished_at=None)
                    .execution_options(synchronize_session=False)
                ),
            )
            if result.rowcount != 1:
                return None
            run = s.get(Run, run_id, populate_existing=True)
            return _run_row(run) if run is not None else None

    def accepted_runs(self) -> list[RunRow]:
        """Runs a server accepted that have not finished (queued or running), oldest first."""
        with self._read.begin() as s:
            rows = s.execute(
                select(Run).where(Run.status.in_(("queued", "running")), Run.request.is_not(None)).order_by(Run.id)
            ).scalars()
            return [_run_row(r) for r in rows]

    def request_cancel(self, run_id: int) -> RunRow:
        """Ask for a run to stop: a queued one ends 'interrupted' at once, a running one is told through its row."""
        now = utcnow()
        with self._session.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StateError(f"no run {run_id} in the state store at {self.url}")
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(("queued", "running")), Run.cancel_requested_at.is_(None))
                .values(cancel_requested_at=now)
                .execution_options(synchronize_session=False)
            )
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "queued")
                .values(status="interrupted", finished_at=now, summary={"tables": 0, "cancelled": True})
                .execution_options(synchronize_session=False)
            )
            run = s.get(Run, run_id, populate_existing=True)
            assert run is not None
            return _run_row(run)

    def cancel_requested(self, run_ids: Sequence[int]) -> set[int]:
        """Those of ``run_ids`` whose cancellation was asked for."""
        if not run_ids:
            return set()
        with self._read.begin() as s:
            stmt = select(Run.id).where(Run.id.in_(list(run_ids)), Run.cancel_requested_at.is_not(None))
            return set(s.execute(stmt).scalars())

    def requeue_run(self, run_id: int, owner: str) -> bool:
        """Put a run ``owner`` was carrying out back in the queue (its server is stopping); False if not its own."""
        with self._session.begin() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.owner == owner, Run.request.is_not(None))
                    .values(status="queued", owner=None, finished_at=None)
                    .execution_options(synchronize_session=False)
                ),
            )
            return result.rowcount == 1

    def touch_runs(self, run_ids: Sequence[int]) -> None:
        """The heartbeat of several runs at once."""
        if not run_ids:
            return
        with self._session.begin() as s:
            s.execute(update(Run).where(Run.id.in_(list(run_ids))).values(heartbeat_at=utcnow()))

    def touch_run(self, run_id: int) -> None:
        """The run's heartbeat: it is still going on."""
        with self._session.begin() as s:
            s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow()))

    def set_run_report(self, run_id: int, path: str) -> None:
        """Remember where a run's report was written."""
        with self._session.begin() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StateError(f"no run {run_id} in the state store at {self.url}")
            run.report_path = str(path)

    def get_run(self, run_id: int) -> RunRow | None:
        """One run, or None."""
        with self._read.begin() as s:
            run = s.get(Run, run_id)
            return _run_row(run) if run is not None else None

    def list_runs(self, limit: int = 20, before: int | None = None) -> list[RunRow]:
        """The newest runs first (only those older than run ``before`` when given)."""
        stmt = select(Run)
        if before is not None:
            stmt = stmt.where(Run.id < before)
        with self._read.begin() as s:
            rows = s.execute(stmt.order_by(Run.id.desc()).limit(limit)).scalars().all()
            return [_run_row(r) for r in rows]

    # ---------------------------------------------------------------- tasks

    def plan_task(self, source: str, destination: str, strategy: str, reason: str) -> TaskRow:
        """Create or re-plan the task of a source table (only while it is still in phase 'planned')."""
        return self.plan_tasks([(source, destination, strategy, reason)])[0]

    def plan_tasks(self, items: Sequence[tuple[str, str, str, str]]) -> list[TaskRow]:
        """``plan_task`` for many (source, destination, strategy, reason) at once, in one transaction."""
        try:
            with self._session.begin() as s:
                # every task that could be involved, read at once instead of two queries per item
                known: tuple[dict[str, Task], dict[str, Task]] | None = None
                if len(items) > 1:
                    tasks = s.execute(select(Task)).scalars().all()
                    known = ({t.source: t for t in tasks}, {t.destination: t for t in tasks})
                planned = [self._plan_one(s, *item, known=known) for item in items]
                s.flush()  # the new tasks at once, for their ids
                return [_task_row(p) if isinstance(p, Task) else p for p in planned]
        except IntegrityError as exc:
            raise StateError(
                "could not save the plan: another worker planned the same source or destination at the same "
                f"time; plan again ({exc.orig})"
            ) from exc

    def _plan_one(
        self,
        s: Session,
        source: str,
        destination: str,
        strategy: str,
        reason: str,
        known: tuple[dict[str, Task], dict[str, Task]] | None = None,
    ) -> TaskRow | Task:
        """The task's row, or a new task not flushed yet. ``known``: the tasks by source and by destination,
        read in this transaction (kept up to date here); without it they are queried."""
        strategy, reason = str(strategy), str(reason)
        if known is not None:
            existing = known[0].get(source)
        else:
            existing = s.execute(select(Task).where(Task.source == source)).scalar_one_or_none()
        if existing is not None and existing.phase != Phase.PLANNED:
            if existing.destination != destination:
                raise StateError(
                    f"task {source} is in phase {existing.phase} towards {existing.destination}; "
                    f"it cannot be re-planned to {destination}: roll back or remove the task first"
                )
            return _task_row(existing)
        if known is not None:
            holder = known[1].get(destination)
            other = holder if holder is not None and holder.source != source else None
        else:
            other = s.execute(
                select(Task).where(Task.destination == destination, Task.source != source)
            ).scalar_one_or_none()
        if other is not None:
            raise StateError(
                f"{source} and {other.source} both target {destination}: "
                "map each source to its own destination, or roll back or remove the other task first"
            )
        if existing is None:
            task = Task(
                source=source,
                destination=destination,
                strategy=strategy,
                reason=reason,
                phase=str(Phase.PLANNED),
                status=str(Status.PENDING),
                version=1,
                attempts=0,
                rows=0,
                bytes=0,
                updated_at=utcnow(),
            )
            s.add(task)
            if known is not None:
                known[0][source] = known[1][destination] = task
            return task
        if (existing.destination, existing.strategy, existing.reason) == (destination, strategy, reason):
            return _task_row(existing)
        before = existing.destination
        row = self._conditional_update(
            s, existing, existing.version, {"destination": destination, "strategy": strategy, "reason": reason}
        )
        if known is not None:
            if known[1].get(before) is existing:
                del known[1][before]
            known[1][destination] = existing
        return row

    def get_task(self, source: str) -> TaskRow | None:
        """The task of a source table, or None."""
        with self._session.begin() as s:
            task = s.execute(select(Task).where(Task.source == source)).scalar_one_or_none()
            return _task_row(task) if task is not None else None

    def get_task_by_id(self, task_id: int) -> TaskRow:
        """The task with this id; StateError if there is none."""
        with self._read.begin() as s:
            task = s.get(Task, task_id)
            if task is None:
                raise StateError(f"no task {task_id} in the state store at {self.url}")
            return _task_row(task)

    def run_tasks(self, run_id: int) -> list[TaskRow]:
        """The tasks a run last claimed (each task names the run that worked on it last), by source."""
        with self._read.begin() as s:
            tasks = s.execute(select(Task).where(Task.run_id == run_id).order_by(Task.source)).scalars().all()
            return [_task_row(t) for t in tasks]

    def task_counts(self) -> dict[tuple[str, str], int]:
        """How many tasks are in each (phase, status)."""
        with self._read.begin() as s:
            rows = s.execute(select(Task.phase, Task.status, func.count()).group_by(Task.phase, Task.status)).all()
        return {(str(phase), str(status)): int(n) for phase, status, n in rows}

    def list_tasks(self, pattern: str | None = None) -> list[TaskRow]:
        """All tasks ordered by source, optionally only those whose source matches an fnmatch glob."""
        with self._session.begin() as s:
            tasks = s.execute(select(Task).order_by(Task.source)).scalars().all()
            rows = [_task_row(t) for t in tasks]
        if pattern is not None:
            rows = [r for r in rows if fnmatchcase(r.source, pattern)]
        return rows

    def _conditional_update(self, s: Session, current: Task, version: int, values: dict[str, Any]) -> TaskRow:
        """UPDATE task ... WHERE id = :id AND version = :v; StateError when another worker got there first."""
        values = {**values, "version": Task.version + 1, "updated_at": utcnow()}
        result = cast(
            CursorResult[Any],
            s.execute(
                update(Task)
                .where(Task.id == current.id, Task.version == version)
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            raise StateError(f"task {current.source} was changed by another worker (expected version {version})")
        return _task_row(_fresh_task(s, current.id))

    def claim_task(
        self,
        task_id: int,
        owner: str,
        run_id: int,
        phase: str,
        lease_seconds: float,
        take_from: str | None = None,
        version: int | None = None,
    ) -> TaskRow:
        """Take a task's lease for ``owner``: one conditional update, so of two claimants exactly one wins.

        The task must be free, held by ``owner`` already, held past its lease, or held by ``take_from``
        (a holder known to be dead). The task becomes 'running' in ``phase``, attempts + 1, error cleared.
        Raises :class:`TaskHeldError` naming the holder when someone else holds it, and, when ``version``
        is given, :class:`StaleTaskError` when the task changed since it was read at that version.
        """
        now = utcnow()
        free = or_(Task.owner.is_(None), Task.owner == owner, Task.lease_until < now)
        if take_from is not None:
            free = or_(free, Task.owner == take_from)
        values: dict[str, Any] = {
            "owner": owner,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "status": str(Status.RUNNING),
            "phase": str(Phase(phase)),
            "run_id": run_id,
            "attempts": Task.attempts + 1,
            "error": None,
            "error_kind": None,
            "finished_at": None,
            "version": Task.version + 1,
            "updated_at": now,
            # a claim by the run that already holds the task keeps its start time
            "started_at": case((and_(Task.owner == owner, Task.run_id == run_id), Task.started_at), else_=now),
            "claimed_at": case((Task.owner == owner, Task.claimed_at), else_=now),
        }
        conditions = [Task.id == task_id, free]
        if version is not None:
            conditions.append(Task.version == version)
        with self._session.begin() as s:
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Task).where(*conditions).values(**values).execution_options(synchronize_session=False)
                ),
            )
            current = s.get(Task, task_id, populate_existing=True)
            if current is None:
                raise StateError(f"no task {task_id} in the state store at {self.url}")
            held = current.owner not in (None, owner, take_from) and (
                current.lease_until is None or current.lease_until >= now
            )
            if result.rowcount != 1 and not held:
                raise StaleTaskError(f"task {current.source} changed since version {version}; read it again")
            if result.rowcount != 1:
                raise TaskHeldError(
                    f"{current.source} is held by run {current.run_id} ({current.owner}) since "
                    f"{_clock(current.claimed_at)}",
                    holder=current.owner or "",
                    run_id=current.run_id,
                    since=current.claimed_at,
                )
            return _task_row(current)

    def renew_leases(self, owner: str, lease_seconds: float) -> set[int]:
        """Extend every lease ``owner`` holds (the heartbeat); returns the ids of the tasks it still holds."""
        now = utcnow()
        with self._session.begin() as s:
            s.execute(
                update(Task)
                .where(Task.owner == owner)
                .values(lease_until=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return set(s.execute(select(Task.id).where(Task.owner == owner)).scalars().all())

    def _holder_update(self, task: TaskRow, values: dict[str, Any], release: bool = False) -> TaskRow:
        """UPDATE task ... WHERE id = :id AND owner = :holder; LeaseLostError when the holder lost it."""
        if task.owner is None:
            raise StateError(f"task {task.source} is not claimed; claim it before changing it")
        now = utcnow()
        values = {**values, "version": Task.version + 1, "updated_at": now}
        with self._session.begin() as s:
            if release:  # the claim ends: its time counts as work on the table
                claimed = s.execute(
                    select(Task.claimed_at).where(Task.id == task.id, Task.owner == task.owner)
                ).scalar_one_or_none()
                elapsed = (now - _aware(claimed)).total_seconds() if claimed is not None else 0.0
                values.update(owner=None, lease_until=None, work_seconds=Task.work_seconds + max(0.0, elapsed))
            result = cast(
                CursorResult[Any],
                s.execute(
                    update(Task)
                    .where(Task.id == task.id, Task.owner == task.owner)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                ),
            )
            current = s.get(Task, task.id, populate_existing=True)
            if current is None:
                raise StateError(f"no task {task.id} in the state store at {self.url}")
            if result.rowcount != 1:
                raise LeaseLostError(
                    f"{task.source}: this process's claim was taken over by run {current.run_id} "
                    f"({current.owner}); its work continues there"
                )
            return _task_row(current)

    def advance_task(self, task: TaskRow, phase: str, **fields: int | None) -> TaskRow:
        """Move a held task to another phase, optionally setting source_snapshot_id, rows, bytes."""
        unknown = set(fields) - ADVANCE_FIELDS
        if unknown:
            raise TypeError(f"advance_task got unknown fields {sorted(unknown)}; allowed: {sorted(ADVANCE_FIELDS)}")
        values: dict[str, Any] = {"phase": str(Phase(phase))}
        for name in ("rows", "bytes"):
            if name in fields and fields[name] is None:
                raise ValueError(f"advance_task: {name} cannot be None")
        values.update(fields)
        return self._holder_update(task, values)

    def complete_task(self, task: TaskRow, phase: str, rows: int | None = None, bytes: int | None = None) -> TaskRow:
        """Mark a held task succeeded in this phase and release it."""
        values: dict[str, Any] = {
            "phase": str(Phase(phase)),
            "status": str(Status.SUCCEEDED),
            "finished_at": utcnow(),
            "error": None,
            "error_kind": None,
        }
        if rows is not None:
            values["rows"] = rows
        if bytes is not None:
            values["bytes"] = bytes
        return self._holder_update(task, values, release=True)

    def fail_task(self, task: TaskRow, phase: str, error: str, error_kind: str) -> TaskRow:
        """Mark a held task failed in this phase (error 'terminal' or 'transient') and release it."""
        if error_kind not in ERROR_KINDS:
            raise ValueError(f"error_kind must be one of {sorted(ERROR_KINDS)}, not {error_kind!r}")
        return self._holder_update(
            task,
            {
                "phase": str(Phase(phase)),
                "status": str(Status.FAILED),
                "finished_at": utcnow(),
                "error": str(error),
                "error_kind": error_kind,
            },
            release=True,
        )

    def reset_task(self, task: TaskRow, phase: str = "planned") -> TaskRow:
        """Put a held task back to 'pending' in the given phase (used by rollback) and release it."""
        return self._holder_update(
            task,
            {"phase": str(Phase(phase)), "status": str(Status.PENDING), "error": None, "error_kind": None},
            release=True,
        )

    def set_archive(self, task: TaskRow, metadata_location: str | None) -> TaskRow:
        """Remember (or with None, forget) the source metadata location archived at cut-over."""
        return self._holder_update(
            task,
            {
                "archived_metadata_location": metadata_location,
                "archived_at": utcnow() if metadata_location is not None else None,
            },
        )

    # ---------------------------------------------------------- written files

    def record_written(self, task_id: int, run_id: int | None, owner: str, paths: Iterable[str]) -> None:
        """Record files a task is about to write (before writing them); a path already recorded is kept."""
        wanted = {_path_key(p): p for p in paths}
        if not wanted:
            return
        now = utcnow()
        with self._session.begin() as s:
            known = set(
                s.execute(
                    select(WrittenFile.path_key).where(
                        WrittenFile.task_id == task_id, WrittenFile.path_key.in_(list(wanted))
                    )
                ).scalars()
            )
            s.add_all(
                WrittenFile(task_id=task_id, run_id=run_id, owner=owner, path=p, path_key=k, created_at=now)
                for k, p in wanted.items()
                if k not in known
            )

    def written_files(self, task_id: int) -> list[str]:
        """Every file recorded as written by a task and not yet settled, in the order recorded."""
        with self._session.begin() as s:
            stmt = select(WrittenFile.path).where(WrittenFile.task_id == task_id).order_by(WrittenFile.id)
            return list(s.execute(stmt).scalars())

    def written_among(self, task_id: int, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` a task recorded as written by it."""
        keys = {_path_key(p): p for p in paths}
        found: set[str] = set()
        with self._session.begin() as s:
            chunk = list(keys)
            for start in range(0, len(chunk), 500):
                stmt = select(WrittenFile.path_key).where(
                    WrittenFile.task_id == task_id, WrittenFile.path_key.in_(chunk[start : start + 500])
                )
                found.update(keys[k] for k in s.execute(stmt).scalars())
        return found

    def is_written(self, task_id: int, path: str) -> bool:
        """Whether a task recorded ``path`` as written by it."""
        with self._session.begin() as s:
            stmt = select(WrittenFile.id).where(WrittenFile.task_id == task_id, WrittenFile.path_key == _path_key(path))
            return s.execute(stmt.limit(1)).first() is not None

    def forget_written(self, task_id: int, paths: Iterable[str]) -> None:
        """Settle recorded files: committed ones belong to the table now, deleted ones are gone."""
        keys = [_path_key(p) for p in paths]
        with self._session.begin() as s:
            for start in range(0, len(keys), 500):
                s.execute(
                    delete(WrittenFile).where(
                        WrittenFile.task_id == task_id, WrittenFile.path_key.in_(keys[start : start + 500])
                    )
                )

    # ----------------------------------------------------------- checkpoints

    def record_checkpoint(
        self,
        task_id: int,
        run_id: int | None,
        source_snapshot_id: int,
        batch: int,
        dest_snapshot_id: int | None,
        files: int,
        rows: int,
        bytes: int,
        seconds: float | None = None,
    ) -> CheckpointRow:
        """Record a committed batch; if (task, snapshot, batch) exists already, return that row unchanged."""
        key = (
            Checkpoint.task_id == task_id,
            Checkpoint.source_snapshot_id == source_snapshot_id,
            Checkpoint.batch == batch,
        )
        try:
            with self._session.begin() as s:
                found = s.execute(select(Checkpoint).where(*key)).scalar_one_or_none()
                if found is not None:
                    return _checkpoint_row(found)
                cp = Checkpoint(
                    task_id=task_id,
                    run_id=run_id,
                    source_snapshot_id=source_snapshot_id,
                    batch=batch,
                    dest_snapshot_id=dest_snapshot_id,
                    files=files,
                    rows=rows,
                    bytes=bytes,
                    seconds=seconds,
                    created_at=utcnow(),
                )
                s.add(cp)
                s.flush()
                return _checkpoint_row(cp)
        except IntegrityError as exc:
            # Either another worker recorded the same batch first, or the task does not exist.
            with self._session.begin() as s:
                found = s.execute(select(Checkpoint).where(*key)).scalar_one_or_none()
                if found is not None:
                    return _checkpoint_row(found)
            raise StateError(f"cannot record checkpoint for task {task_id}: {exc.orig}") from exc

    def run_progress(self, run_id: int) -> dict[int, tuple[int, int, int]]:
        """(files, rows, bytes) committed by a run so far, per task."""
        with self._read.begin() as s:
            rows = s.execute(
                select(
                    Checkpoint.task_id,
                    func.sum(Checkpoint.files),
                    func.sum(Checkpoint.rows),
                    func.sum(Checkpoint.bytes),
                )
                .where(Checkpoint.run_id == run_id)
                .group_by(Checkpoint.task_id)
            ).all()
        return {int(t): (int(f or 0), int(r or 0), int(b or 0)) for t, f, r, b in rows}

    def set_estimates(self, estimates: Iterable[tuple[str, float | None, str]]) -> None:
        """Record the plan's (source, copy seconds, engine) on each task, in one transaction."""
        rows = [{"src": source, "seconds": seconds, "engine": engine} for source, seconds, engine in estimates]
        if not rows:
            return
        table = Task.__table__
        statement = (
            update(table)  # type: ignore[arg-type]
            .where(table.c.source == bindparam("src"))
            .values(estimate_seconds=bindparam("seconds"), estimate_engine=bindparam("engine"))
        )
        with self._session.begin() as s:
            s.connection().execute(statement, rows)  # one executemany, not a round trip per table

    def copy_seconds(self) -> dict[int, float]:
        """Per task, the seconds its committed batches took (of its pinned snapshot): the copy's actual time."""
        with self._session.begin() as s:
            rows = s.execute(
                select(Checkpoint.task_id, func.sum(Checkpoint.seconds))
                .join(Task, Task.id == Checkpoint.task_id)
                .where(Checkpoint.source_snapshot_id == Task.source_snapshot_id, Checkpoint.seconds.is_not(None))
                .group_by(Checkpoint.task_id)
            ).all()
        return {int(t): float(sec or 0.0) for t, sec in rows}

    def throughput_samples(self) -> list[tuple[str, int, float]]:
        """(strategy, bytes, seconds) of every timed committed batch, for throughput estimates."""
        with self._session.begin() as s:
            rows = s.execute(
                select(Task.strategy, Checkpoint.bytes, Checkpoint.seconds)
                .join(Task, Task.id == Checkpoint.task_id)
                .where(Checkpoint.seconds.is_not(None))
            ).all()
        return [(strategy, int(size), float(seconds or 0.0)) for strategy, size, seconds in rows]

    def checkpoints(self, task_id: int, source_snapshot_id: int | None = None) -> list[CheckpointRow]:
        """A task's checkpoints ordered by batch (then id), optionally for one source snapshot."""
        stmt = select(Checkpoint).where(Checkpoint.task_id == task_id)
        if source_snapshot_id is not None:
            stmt = stmt.where(Checkpoint.source_snapshot_id == source_snapshot_id)
        with self._session.begin() as s:
            rows = s.execute(stmt.order_by(Checkpoint.batch, Checkpoint.id)).scalars().all()
            return [_checkpoint_row(c) for c in rows]

    # ---------------------------------------------------------- sync and cut-over

    def record_replay(
        self,
        task_id: int,
        run_id: int | None,
        source_snapshot_id: int,
        dest_snapshot_id: int | None,
        operation: str,
        how: str,
        files_added: int = 0,
        files_removed: int = 0,
        bytes: int = 0,
        seconds: float | None = None,
    ) -> SnapshotMapRow:
        """Record which destination snapshot carries a source snapshot; a pair recorded already is kept."""
        key = (SnapshotMap.task_id == task_id, SnapshotMap.source_snapshot_id == source_snapshot_id)
        try:
            with self._session.begin() as s:
                found = s.execute(select(SnapshotMap).where(*key)).scalar_one_or_none()
                if found is not None:
                    return _map_row(found)
                row = SnapshotMap(
                    task_id=task_id,
                    run_id=run_id,
                    source_snapshot_id=source_snapshot_id,
                    dest_snapshot_id=dest_snapshot_id,
                    operation=operation,
                    how=how,
                    files_added=files_added,
                    files_removed=files_removed,
                    bytes=bytes,
                    seconds=seconds,
                    created_at=utcnow(),
                )
                s.add(row)
                s.flush()
                return _map_row(row)
        except IntegrityError as exc:
            with self._session.begin() as s:
                found = s.execute(select(SnapshotMap).where(*key)).scalar_one_or_none()
                if found is not None:
                    return _map_row(found)
            raise StateError(f"cannot record the snapshot map of task {task_id}: {exc.orig}") from exc

    def snapshot_map(self, task_id: int) -> list[SnapshotMapRow]:
        """A task's source → destination snapshot map, in the order the snapshots were recorded."""
        with self._read.begin() as s:
            rows = s.execute(
                select(SnapshotMap).where(SnapshotMap.task_id == task_id).order_by(SnapshotMap.id)
            ).scalars()
            return [_map_row(r) for r in rows]

    def sync_summary(self) -> dict[int, tuple[int, datetime | None]]:
        """Per task: how many source commits a sync replayed, and when the last one was (one grouped query)."""
        with self._read.begin() as s:
            rows = s.execute(
                select(SnapshotMap.task_id, func.count(), func.max(SnapshotMap.created_at))
                .where(SnapshotMap.how != "copy")
                .group_by(SnapshotMap.task_id)
            ).all()
        return {int(t): (int(n), _aware(at) if at is not None else None) for t, n, at in rows}

    def forget_snapshot_map(self, task_id: int) -> None:
        """Forget a task's snapshot map (a reload re-copies the table from scratch)."""
        with self._session.begin() as s:
            s.execute(delete(SnapshotMap).where(SnapshotMap.task_id == task_id))

    def start_cutover_step(self, task_id: int, run_id: int | None, step: str) -> CutoverStepRow:
        """Record that a cut-over step starts (a step started before and not done is started again)."""
        with self._session.begin() as s:
            found = s.execute(
                select(CutoverStep).where(CutoverStep.task_id == task_id, CutoverStep.step == step)
            ).scalar_one_or_none()
            if found is None:
                found = CutoverStep(
                    task_id=task_id, run_id=run_id, step=step, status="started", details={}, started_at=utcnow()
                )
                s.add(found)
            elif found.status != "done":
                found.run_id, found.started_at = run_id, utcnow()
            s.flush()
            return _step_row(found)

    def finish_cutover_step(self, task_id: int, step: str, details: dict[str, Any]) -> CutoverStepRow:
        """Record that a cut-over step is done, with what it did."""
        with self._session.begin() as s:
            found = s.execute(
                select(CutoverStep).where(CutoverStep.task_id == task_id, CutoverStep.step == step)
            ).scalar_one_or_none()
            if found is None:
                raise StateError(f"task {task_id}: cut-over step {step!r} finished but never started")
            found.status, found.details, found.finished_at = "done", details, utcnow()
            s.flush()
            return _step_row(found)

    def cutover_steps(self, task_id: int) -> list[CutoverStepRow]:
        """A task's recorded cut-over steps, in the order they started."""
        with self._read.begin() as s:
            rows = s.execute(
                select(CutoverStep).where(CutoverStep.task_id == task_id).order_by(CutoverStep.id)
            ).scalars()
            return [_step_row(r) for r in rows]

    def forget_cutover_step(self, task_id: int, step: str) -> None:
        """Forget one cut-over step (rollback undid it)."""
        with self._session.begin() as s:
            s.execute(delete(CutoverStep).where(CutoverStep.task_id == task_id, CutoverStep.step == step))

    # -------------------------------------------------------------- findings

    def add_findings(self, run_id: int, findings: Iterable[Finding]) -> int:
        """Record a run's findings; returns how many were recorded."""
        now = utcnow()
        records = [
            FindingRecord(
                run_id=run_id,
                table_name=f.table,
                severity=str(Severity(f.severity)),
                code=f.code,
                message=f.message,
                fix=f.fix,
                created_at=now,
            )
            for f in findings
        ]
        if not records:
            return 0
        try:
            with self._session.begin() as s:
                s.add_all(records)
        except IntegrityError as exc:
            raise StateError(f"cannot record findings for run {run_id}: {exc.orig}") from exc
        return len(records)

    def findings(self, run_id: int | None = None, table: str | None = None) -> list[FindingRow]:
        """Findings of one run (None: the newest run that has findings, for that table if given)."""
        with self._session.begin() as s:
            if run_id is None:
                newest = select(func.max(FindingRecord.run_id))
                if table is not None:
                    newest = newest.where(FindingRecord.table_name == table)
                run_id = s.execute(newest).scalar_one_or_none()
                if run_id is None:
                    return []
            stmt = select(FindingRecord).where(FindingRecord.run_id == run_id)
            if table is not None:
                stmt = stmt.where(FindingRecord.table_name == table)
            rows = s.execute(stmt.order_by(FindingRecord.id)).scalars().all()
            return [_finding_row(f) for f in rows]

    # ------------------------------------------------------------ validation

    def record_validation(
        self,
        task_id: int,
        run_id: int | None,
        level: int,
        comparator: str,
        passed: bool,
        details: dict[str, Any],
    ) -> ValidationRow:
        """Record one comparator's outcome for a task."""
        try:
            with self._session.begin() as s:
                v = Validation(
                    task_id=task_id,
                    run_id=run_id,
                    level=level,
                    comparator=comparator,
                    passed=bool(passed),
                    details=dict(details),
                    created_at=utcnow(),
                )
                s.add(v)
                s.flush()
                return _validation_row(v)
        except IntegrityError as exc:
            raise StateError(f"cannot record validation for task {task_id}: {exc.orig}") from exc

    def validations(self, task_id: int, run_id: int | None = None) -> list[ValidationRow]:
        """A task's validation outcomes in the order recorded, optionally for one run."""
        stmt = select(Validation).where(Validation.task_id == task_id)
        if run_id is not None:
            stmt = stmt.where(Validation.run_id == run_id)
        with self._session.begin() as s:
            return [_validation_row(v) for v in s.execute(stmt.order_by(Validation.id)).scalars().all()]

    def run_validations(self, run_id: int) -> list[ValidationRow]:
        """Every comparator outcome a run recorded, in the order recorded."""
        stmt = select(Validation).where(Validation.run_id == run_id).order_by(Validation.id)
        with self._read.begin() as s:
            return [_validation_row(v) for v in s.execute(stmt).scalars().all()]

    # ------------------------------------------------------------- inventory

    def save_inventory(self, facts: Iterable[TableFacts]) -> None:
        """Replace the whole saved inventory with these facts, in one transaction."""
        now = utcnow()
        by_source = {f.table: f.to_dict() for f in facts}
        rows = [{"source": src, "facts": d, "captured_at": now} for src, d in by_source.items()]
        with self._session.begin() as s:
            s.execute(delete(Inventory))
            if rows:  # one executemany: 10,000 tables as ORM objects took seconds
                s.connection().execute(insert(Inventory.__table__), rows)  # type: ignore[arg-type]

    def load_inventory(self) -> list[TableFacts]:
        """The saved inventory ordered by source table."""
        with self._session.begin() as s:
            rows = s.execute(select(Inventory).order_by(Inventory.source)).scalars().all()
            return [TableFacts.from_dict(r.facts) for r in rows]

    def inventory_captured_at(self) -> datetime | None:
        """When the saved inventory was captured, or None if there is none."""
        with self._session.begin() as s:
            return s.execute(select(func.max(Inventory.captured_at))).scalar_one_or_none()

    # ---------------------------------------------------------------- events

    def event(
        self,
        kind: str,
        message: str,
        run_id: int | None = None,
        task_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one event to the log, with its actor and, for a table's event, the table's state
        before (as the table's previous entry left it) and after. A step that read state of its own
        (``data`` holding ``before`` and ``after`` mappings, at its top or under ``governance``, as a
        governance step's grants) adds it."""
        with self._session.begin() as s:
            run = s.get(Run, run_id) if run_id is not None else None
            actor = (run.started_by if run is not None else None) or self._local_actor
            before = after = None
            task = s.get(Task, task_id) if task_id is not None else None
            if task is not None:
                last = s.execute(
                    select(Event.after)
                    .where(Event.task_id == task_id, Event.after.is_not(None))
                    .order_by(Event.id.desc())
                    .limit(1)
                ).scalar()
                before = {k: last[k] for k in AUDIT_STATE if k in last} if last else None
                after = _state_of(task)
                own = dict(data or {})
                if isinstance(own.get("governance"), dict):  # a governance step carried in a step's details
                    own = own["governance"]
                own_before, own_after = own.get("before"), own.get("after")
                if isinstance(own_before, dict) and isinstance(own_after, dict):
                    before = {**(before or {}), **own_before}
                    after = {**after, **own_after}
            s.add(
                Event(
                    ts=utcnow(),
                    run_id=run_id,
                    task_id=task_id,
                    kind=kind,
                    message=message,
                    data=dict(data) if data is not None else None,
                    actor=actor,
                    before=before,
                    after=after,
                )
            )

    def events(
        self,
        run_id: int | None = None,
        task_id: int | None = None,
        limit: int = 1000,
        after: int | None = None,
        task_ids: Iterable[int] | None = None,
        since: datetime | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[EventRow]:
        """The newest ``limit`` events (optionally of one run and/or task, of any of ``task_ids``, logged
        at or after ``since``, of any of ``kinds``), oldest first; with ``after``, the first ``limit``
        events logged after the event of that id."""
        stmt = select(Event)
        if kinds is not None:
            stmt = stmt.where(Event.kind.in_(list(kinds)))
        if run_id is not None:
            stmt = stmt.where(Event.run_id == run_id)
        if task_id is not None:
            stmt = stmt.where(Event.task_id == task_id)
        if task_ids is not None:
            stmt = stmt.where(Event.task_id.in_(list(task_ids)))
        if since is not None:
            stmt = stmt.where(Event.ts >= since)
        with self._read.begin() as s:
            if after is not None:
                rows = s.execute(stmt.where(Event.id > after).order_by(Event.id).limit(limit)).scalars().all()
                return [_event_row(e) for e in rows]
            rows = s.execute(stmt.order_by(Event.id.desc()).limit(limit)).scalars().all()
            return [_event_row(e) for e in reversed(rows)]
