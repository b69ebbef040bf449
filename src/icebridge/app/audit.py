"""Audit: what happened to each table and run, when, by whose request, and what it changed.

Read from the store's append-only event log. Each entry names its actor (the user who started the
run it belongs to, as far as the run recorded one) and, for the changes the log records today — a
table moving to another phase, a table's run ending — its state before and after.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import NotFoundError
from icebridge.selection import check_pattern

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import EventRow


class AuditRequest(BaseModel):
    """Whose entries: one run's, one table's (its source name), or all; a page of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Only this run's entries.")
    table: str | None = Field(default=None, description="Only this table's entries (catalog.ns.table of its source).")
    after: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Entries after this one (paging).")
    limit: int = Field(default=200, ge=1, le=10_000, description="At most this many entries.")


class AuditEntry(BaseModel):
    """One recorded event: when, by whose run, about what, and the state it changed."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    actor: str | None = Field(description="Who started the run the event belongs to (None: not recorded).")
    run_id: int | None
    task_id: int | None
    table: str | None
    kind: str
    message: str
    before: dict[str, Any] | None = Field(description="The table's phase/status before, when the log shows it.")
    after: dict[str, Any] | None = Field(description="The table's phase/status after, for the changes the log records.")
    data: dict[str, Any]


class AuditLog(BaseModel):
    """A page of audit entries, oldest first; ``next_after`` asks for the next page."""

    model_config = ConfigDict(frozen=True)

    entries: list[AuditEntry]
    next_after: int | None


class AuditService:
    """Reads the event log as audit entries; changes nothing."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def entries(self, request: AuditRequest) -> AuditLog:
        """The entries ``request`` asks for (NotFoundError for an unknown run or table)."""
        store = self.app.store
        task_id = None
        if request.run_id is not None and store.get_run(request.run_id) is None:
            raise NotFoundError(f"no run {request.run_id} in the state store; GET /api/v1/runs lists the runs")
        if request.table is not None:
            check_pattern(request.table)
            task = store.get_task(request.table)
            if task is None:
                raise NotFoundError(
                    f"no table {request.table!r} in the state store; name a source as catalog.ns.table "
                    "(GET /api/v1/tasks lists them)"
                )
            task_id = task.id
        rows = store.events(run_id=request.run_id, task_id=task_id, limit=request.limit, after=request.after or 0)
        sources = {t.id: t.source for t in store.list_tasks()} if rows else {}
        actors: dict[int, str | None] = {}
        phases: dict[int, dict[str, Any]] = {}  # each table's state as the entries so far show it
        entries = []
        for row in rows:
            if row.run_id is not None and row.run_id not in actors:
                run = store.get_run(row.run_id)
                actors[row.run_id] = run.started_by if run else None
            entries.append(self._entry(row, actors, phases, sources))
        full = len(rows) == request.limit
        return AuditLog(entries=entries, next_after=rows[-1].id if rows and full else None)

    def _entry(
        self, row: EventRow, actors: dict[int, str | None], phases: dict[int, dict[str, Any]], sources: dict[int, str]
    ) -> AuditEntry:
        data = dict(row.data or {})
        after: dict[str, Any] | None = None
        if row.kind in ("table-started", "phase-started") and data.get("phase"):
            after = {"phase": data["phase"], "status": "running"}
        elif row.kind == "table-finished" and data.get("status"):
            after = {"phase": data.get("phase"), "status": data["status"]}
        before = None
        if after is not None and row.task_id is not None:
            before = phases.get(row.task_id)
            phases[row.task_id] = after
        table = data.get("table") or (sources.get(row.task_id) if row.task_id is not None else None)
        return AuditEntry(
            id=row.id,
            at=row.ts,
            actor=actors.get(row.run_id) if row.run_id is not None else None,
            run_id=row.run_id,
            task_id=row.task_id,
            table=str(table) if table is not None else None,
            kind=row.kind,
            message=row.message,
            before=before,
            after=after,
            data={k: v for k, v in data.items() if k != "table"},
        )
