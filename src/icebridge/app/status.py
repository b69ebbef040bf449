"""Status: every run (with its report) and every table, as the store records them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from icebridge.leases import describe, is_dead

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import RunRow, TaskRow


class StatusRequest(BaseModel):
    """Which tables and how many runs to show."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: str | None = Field(default=None, description="Only tables matching this glob.")
    runs: int = Field(default=20, ge=0, le=10_000, description="How many of the newest runs.")


class RunStatus(BaseModel):
    """One recorded run."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    status: str
    config_path: str
    args: dict[str, Any]
    summary: dict[str, Any]
    report_path: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    stale: bool = Field(default=False, description="Recorded as running, but its process is gone or silent.")
    started_by: str | None = Field(default=None, description="Who asked for it (runs started through the API).")


class TableStatus(BaseModel):
    """One table's task: where it is, what it moved, how long it worked, and why it failed."""

    model_config = ConfigDict(frozen=True)

    id: int
    source: str
    destination: str
    strategy: str
    reason: str
    phase: str
    status: str
    error: str | None
    error_kind: str | None
    run_id: int | None
    attempts: int
    source_snapshot_id: int | None
    rows: int
    bytes: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="Work time: seconds spent on the table over every attempt.")
    archived_metadata_location: str | None
    archived_at: datetime | None
    held_by: str | None = Field(default=None, description="The run working on it now, if one holds it.")
    synced_commits: int = Field(default=0, description="Source commits a sync replayed onto the destination.")
    last_synced_at: datetime | None = Field(default=None, description="When a sync last replayed a source commit.")
    estimate_seconds: float | None = Field(default=None, description="The plan's estimate of its copy.")
    estimate_engine: str | None = Field(default=None, description="The engine the estimate was made for.")
    copy_seconds: float | None = Field(default=None, description="What its copy took: its batches' seconds.")


class StatusResult(BaseModel):
    """Runs newest first, tables by name."""

    model_config = ConfigDict(frozen=True)

    runs: list[RunStatus]
    tables: list[TableStatus]


class StatusService:
    """Reads runs and tasks from the store; touches no catalog."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def status(self, request: StatusRequest) -> StatusResult:
        from icebridge.app.tasks import select_tasks

        runs = self.app.store.list_runs(limit=request.runs)
        tasks = select_tasks(self.app, request.tables)
        synced = self.app.store.sync_summary()
        copied = self.app.store.copy_seconds()
        return StatusResult(
            runs=[run_status(self.app, r) for r in runs],
            tables=[_table(t, synced.get(t.id), copied.get(t.id)) for t in tasks],
        )

    def tables(self, pattern: str | None = None) -> list[TableStatus]:
        """Every table's task (those matching ``pattern``), by source."""
        from icebridge.app.tasks import select_tasks

        synced = self.app.store.sync_summary()
        return [_table(t, synced.get(t.id)) for t in select_tasks(self.app, pattern)]

    def table(self, task_id: int) -> TableStatus:
        """One table's task by its id (NotFoundError when there is none)."""
        from icebridge.errors import NotFoundError, StateError

        try:
            return _table(self.app.store.get_task_by_id(task_id), self.app.store.sync_summary().get(task_id))
        except StateError as exc:
            raise NotFoundError(f"no task {task_id} in the state store; GET /api/v1/tasks lists them") from exc


def is_stale(app: AppContext, run: RunRow) -> bool:
    """Recorded as running, but its process is gone (on this machine) or has not beaten for three leases."""
    silent = timedelta(seconds=3 * app.config.migrate.lease_seconds)
    heartbeat = run.heartbeat_at or run.started_at
    return run.status == "running" and (is_dead(run_owner(run)) or datetime.now(UTC) - heartbeat > silent)


def run_status(app: AppContext, run: RunRow) -> RunStatus:
    """A recorded run as the status command and the API show it."""
    return RunStatus(
        id=run.id,
        kind=run.kind,
        status=run.status,
        config_path=run.config_path,
        args=run.args,
        summary=run.summary,
        report_path=run.report_path,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=run.duration_seconds,
        stale=is_stale(app, run),
        started_by=run.started_by,
    )


def run_owner(run: RunRow) -> str | None:
    """The owner a run's claims name (``host|pid|start|run-N``), from the process recorded on the run."""
    return f"{run.owner}|run-{run.id}" if run.owner else None


def _table(
    task: TaskRow, synced: tuple[int, datetime | None] | None = None, copy_seconds: float | None = None
) -> TableStatus:
    return TableStatus(
        id=task.id,
        source=task.source,
        destination=task.destination,
        strategy=task.strategy,
        reason=task.reason,
        phase=str(task.phase),
        status=str(task.status),
        error=task.error,
        error_kind=task.error_kind,
        run_id=task.run_id,
        attempts=task.attempts,
        source_snapshot_id=task.source_snapshot_id,
        rows=task.rows,
        bytes=task.bytes,
        started_at=task.started_at,
        finished_at=task.finished_at,
        duration_seconds=task.work_seconds if task.work_seconds or task.finished_at else None,
        archived_metadata_location=task.archived_metadata_location,
        archived_at=task.archived_at,
        estimate_seconds=task.estimate_seconds,
        estimate_engine=task.estimate_engine,
        copy_seconds=copy_seconds,
        held_by=describe(task.owner) if task.owner else None,
        synced_commits=synced[0] if synced else 0,
        last_synced_at=synced[1] if synced else None,
    )
