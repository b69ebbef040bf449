"""Audit: every step of every table — when, by whom, and the table's state before and after it.

Read from the store's append-only event log, where each entry carries its actor (the user who
started its run through the API, else the operating-system user of the process that did the step)
and, for a table's entry, the table's state as the previous entry left it and as the step left it
(phase, status, pinned snapshot, archived metadata location, error), plus what a step read itself
before and after (a governance swap's grants). ``icebridge audit`` and ``GET /api/v1/audit`` show
it; with ``audit.iceberg_table`` the same entries are appended to ``icebridge_audit.events`` in each
table's destination catalog (``app/audit_table.py``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import NotFoundError, UsageError
from icebridge.selection import check_pattern, matches

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import EventRow

_AGE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AuditRequest(BaseModel):
    """Whose entries: one run's, one table's, the tables a glob matches, since a time; a page of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Only this run's entries.")
    table: str | None = Field(default=None, description="Only this table's entries (catalog.ns.table of its source).")
    tables: str | None = Field(
        default=None, description="Only the entries of tables matching this glob (catalog.ns.table or ns.table)."
    )
    since: str | None = Field(
        default=None,
        description="Only entries logged at or after this time: ISO 8601 (2026-12-01T10:00:00Z; UTC without an "
        "offset) or an age (90s, 30m, 2h, 7d, 1w).",
    )
    after: int | None = Field(default=None, ge=0, le=2**63 - 1, description="Entries after this one (paging).")
    limit: int = Field(default=200, ge=1, le=10_000, description="At most this many entries.")


class AuditEntry(BaseModel):
    """One step: when, by whom, about which table, what it did, and the table's state before and after."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    actor: str | None = Field(description="Who did it: the run's user, else the OS user and host (None: not recorded).")
    run_id: int | None
    task_id: int | None
    table: str | None
    kind: str
    message: str
    before: dict[str, Any] | None = Field(description="The table's state as its previous entry left it.")
    after: dict[str, Any] | None = Field(description="The table's state after this step.")
    data: dict[str, Any]


class AuditLog(BaseModel):
    """A page of audit entries, oldest first; ``next_after`` asks for the next page."""

    model_config = ConfigDict(frozen=True)

    entries: list[AuditEntry]
    next_after: int | None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise) or an age such as ``2h`` or ``1d12h``."""
    value = text.strip()
    if value and _AGE.sub("", value).strip() == "":
        delta = timedelta()
        for amount, unit in _AGE.findall(value):
            delta += timedelta(**{_UNITS[unit]: int(amount)})
        return (now or datetime.now(UTC)) - delta
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: not a time; give an ISO 8601 time (2026-12-01T10:00:00Z, or a date) "
            "or an age (90s, 30m, 2h, 7d, 1w)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class AuditService:
    """Reads the audit log; changes nothing."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def entries(self, request: AuditRequest) -> AuditLog:
        """The entries ``request`` asks for (NotFoundError for an unknown run or table, or a glob matching none)."""
        store = self.app.store
        task_id = None
        task_ids: list[int] | None = None
        since = parse_since(request.since) if request.since is not None else None
        if request.run_id is not None and store.get_run(request.run_id) is None:
            raise NotFoundError(f"no run {request.run_id} in the state store; GET /api/v1/runs lists the runs")
        tasks = store.list_tasks()
        sources = {t.id: t.source for t in tasks}
        if request.table is not None:
            check_pattern(request.table)
            task = store.get_task(request.table)
            if task is None:
                raise NotFoundError(
                    f"no table {request.table!r} in the state store; name a source as catalog.ns.table "
                    "(GET /api/v1/tasks lists them)"
                )
            task_id = task.id
        if request.tables is not None:
            check_pattern(request.tables)
            task_ids = [t.id for t in tasks if matches(t.source, request.tables)]
            if not task_ids:
                raise NotFoundError(
                    f"--tables {request.tables!r} matches no table in the state store; "
                    "'icebridge status' lists the tables (catalog.ns.table or ns.table)"
                )
        rows = store.events(
            run_id=request.run_id,
            task_id=task_id,
            task_ids=task_ids,
            since=since,
            limit=request.limit,
            after=request.after or 0,
        )
        started_by: dict[int, str | None] = {}
        entries = []
        for row in rows:
            if row.actor is None and row.run_id is not None and row.run_id not in started_by:
                run = store.get_run(row.run_id)  # an entry logged before the audit columns existed
                started_by[row.run_id] = run.started_by if run else None
            entries.append(_entry(row, started_by, sources))
        full = len(rows) == request.limit
        return AuditLog(entries=entries, next_after=rows[-1].id if rows and full else None)


def _entry(row: EventRow, started_by: dict[int, str | None], sources: dict[int, str]) -> AuditEntry:
    data = dict(row.data or {})
    table = data.get("table") or (sources.get(row.task_id) if row.task_id is not None else None)
    actor = row.actor or (started_by.get(row.run_id) if row.run_id is not None else None)
    return AuditEntry(
        id=row.id,
        at=row.ts,
        actor=actor,
        run_id=row.run_id,
        task_id=row.task_id,
        table=str(table) if table is not None else None,
        kind=row.kind,
        message=row.message,
        before=row.before,
        after=row.after,
        data={k: v for k, v in data.items() if k != "table"},
    )
