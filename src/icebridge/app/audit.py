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


# ------------------------------------------------------------------------ the Iceberg audit table

AUDIT_NAMESPACE = "icebridge_audit"
AUDIT_TABLE = "events"
LAST_ID_KEY = "icebridge.audit.last-event-id"  # in each append's summary: where the next one starts


class AuditExport(BaseModel):
    """What one export appended: per destination catalog, the entries and the last entry id now held."""

    model_config = ConfigDict(frozen=True)

    appended: dict[str, int] = Field(description="Catalog -> entries appended by this export.")
    last_id: dict[str, int] = Field(description="Catalog -> the newest entry its audit table holds.")


def _audit_schema() -> Any:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

    return Schema(
        NestedField(1, "id", LongType(), required=True, doc="The entry's id in the state store's log"),
        NestedField(2, "at", TimestamptzType(), required=True),
        NestedField(3, "actor", StringType()),
        NestedField(4, "run_id", LongType()),
        NestedField(5, "table_name", StringType(), doc="The source table, catalog.ns.table"),
        NestedField(6, "destination", StringType()),
        NestedField(7, "kind", StringType(), required=True),
        NestedField(8, "message", StringType()),
        NestedField(9, "before", StringType(), doc="JSON: the table's state before the step"),
        NestedField(10, "after", StringType(), doc="JSON: the table's state after the step"),
        NestedField(11, "data", StringType(), doc="JSON: the step's own fields"),
    )


class AuditTableExporter:
    """Appends the audit log to ``icebridge_audit.events`` in each destination catalog, exactly once.

    Each append carries the id of the newest entry it holds in its snapshot summary, and the next export
    starts after the id the table's current snapshot names, so an entry is never appended twice and one
    an interrupted export left out goes with the next. A catalog receives the entries of the tables whose
    destination it holds.
    """

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def export(self) -> AuditExport:
        """Append what each destination catalog's audit table lacks; the catalogs' own errors are raised."""
        store = self.app.store
        by_catalog: dict[str, dict[int, str]] = {}
        for task in store.list_tasks():
            by_catalog.setdefault(task.destination.split(".", 1)[0], {})[task.id] = task.destination
        appended: dict[str, int] = {}
        last: dict[str, int] = {}
        for catalog_name, destinations in sorted(by_catalog.items()):
            table = self._table(catalog_name)
            mark = _last_id(table)
            rows = [
                r
                for r in _events_after(store, mark, list(destinations))
                if r.task_id is not None and r.task_id in destinations
            ]
            if rows:
                table.append(
                    _arrow(rows, destinations, {t.id: t.source for t in store.list_tasks()}),
                    snapshot_properties={LAST_ID_KEY: str(rows[-1].id)},
                )
                mark = rows[-1].id
            appended[catalog_name] = len(rows)
            last[catalog_name] = mark
        return AuditExport(appended=appended, last_id=last)

    def _table(self, catalog_name: str) -> Any:
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

        catalog = self.app.catalogs.get(catalog_name)
        identifier = (AUDIT_NAMESPACE, AUDIT_TABLE)
        try:
            catalog.create_namespace_if_not_exists(AUDIT_NAMESPACE)
        except NamespaceAlreadyExistsError:
            pass
        try:
            return catalog.create_table_if_not_exists(identifier, _audit_schema())
        except TableAlreadyExistsError:  # created by another process meanwhile
            return catalog.load_table(identifier)


def _last_id(table: Any) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get(LAST_ID_KEY, 0))


def _events_after(store: Any, mark: int, task_ids: list[int]) -> list[EventRow]:
    out: list[EventRow] = []
    while True:
        page = store.events(task_ids=task_ids, after=mark, limit=5000)
        out.extend(page)
        if len(page) < 5000:
            return out
        mark = page[-1].id


def _arrow(rows: list[EventRow], destinations: dict[int, str], sources: dict[int, str]) -> Any:
    import json

    import pyarrow as pa

    def dumps(value: Any) -> str | None:
        return json.dumps(value, sort_keys=True, default=str) if value is not None else None

    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("actor", pa.string()),
            pa.field("run_id", pa.int64()),
            pa.field("table_name", pa.string()),
            pa.field("destination", pa.string()),
            pa.field("kind", pa.string(), nullable=False),
            pa.field("message", pa.string()),
            pa.field("before", pa.string()),
            pa.field("after", pa.string()),
            pa.field("data", pa.string()),
        ]
    )
    return pa.Table.from_pylist(
        [
            {
                "id": r.id,
                "at": r.ts,
                "actor": r.actor,
                "run_id": r.run_id,
                "table_name": sources.get(r.task_id) if r.task_id is not None else None,
                "destination": destinations.get(r.task_id) if r.task_id is not None else None,
                "kind": r.kind,
                "message": r.message,
                "before": dumps(r.before),
                "after": dumps(r.after),
                "data": dumps({k: v for k, v in (r.data or {}).items() if k != "table"}),
            }
            for r in rows
        ],
        schema=schema,
    )


def export_after_run(app: AppContext) -> str | None:
    """With ``audit.iceberg_table``, append the audit log to the destination catalogs; a failure is returned
    as one line (the run's own outcome stands), never raised."""
    if not app.config.audit.iceberg_table:
        return None
    try:
        AuditTableExporter(app).export()
    except Exception as exc:  # the audit table is a copy: the store keeps every entry, the next run retries
        return app.config.redact(f"the audit log could not be appended to {AUDIT_NAMESPACE}.{AUDIT_TABLE}: {exc}")
    return None
