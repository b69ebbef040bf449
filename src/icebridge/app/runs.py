"""Runs: migrate, sync, validate, cut over and roll back tables; every run is recorded from start to finish.

A run is a row in the store from the moment it starts; it ends ``succeeded``, ``failed`` or
``interrupted`` whatever happens in between — even when its report cannot be written — and its
events go out on the process's bus as they happen.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from icebridge import runner
from icebridge.app.status import RunStatus, run_status
from icebridge.context import AppContext, RunScope
from icebridge.errors import NotFoundError, ReportWriteError, UsageError
from icebridge.events import Event, FileCopied, RunFinished, RunStarted, event_kind
from icebridge.leases import LeaseKeeper, Owner, process_identity
from icebridge.model import Severity, Status
from icebridge.runner import Pipeline, RunReport, TableOutcome, TableRun

if TYPE_CHECKING:
    from icebridge.store import EventRow, RunRow

Command = Literal["migrate", "sync", "validate", "cutover", "rollback"]
REPORTED = frozenset({"migrate", "sync", "validate", "cutover"})  # runs that validate write an HTML report


class RunRequest(BaseModel):
    """What to run: a command over the tables matching a glob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Command
    tables: str | None = Field(
        default=None, description="Only tables matching this glob (catalog.ns.table or ns.table)."
    )
    engine: str | None = Field(
        default=None,
        description="migrate: the engine for this run, over the mapping rules; validate: local or spark "
        "(levels 3 and 4 on the spark engine's executors).",
    )
    level: int | None = Field(default=None, ge=1, le=4, description="validate: run levels up to this one.")
    allow_reload: bool = Field(
        default=False,
        description="migrate, sync: copy a table again in full when its source's lineage broke (rolled back, "
        "expired past the last synced snapshot, re-created) instead of failing it.",
    )
    watch: float | None = Field(
        default=None,
        gt=0,
        description="sync: sync again every this many seconds until the run is cancelled (Ctrl-C).",
    )
    discard_destination_writes: bool = Field(
        default=False,
        description="rollback: roll back even though the destination received commits after cut-over "
        "(they are left in the destination, no longer read by anyone).",
    )


class RunResult(BaseModel):
    """How a run ended, table by table."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    kind: str
    status: str
    summary: dict[str, Any]
    tables: list[TableOutcome]
    report: str | None = None
    data_docs: str | None = None
    message: str | None = Field(default=None, description="A run-level notice, e.g. that nothing matched.")
    report_error: str | None = Field(default=None, description="Why the run's report could not be written.")

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    @property
    def failed(self) -> bool:
        return self.status != "succeeded"


class RunTable(BaseModel):
    """One table of a run: where it is, what the run moved of it so far, and why it failed."""

    model_config = ConfigDict(frozen=True)

    source: str
    destination: str
    phase: str
    status: str
    rows: int = Field(description="Rows the table holds when it ended, or rows committed by this run so far.")
    bytes: int = Field(description="Bytes the table holds when it ended, or bytes committed by this run so far.")
    files: int | None = Field(default=None, description="Files committed by this run so far (while it runs).")
    seconds: float | None = None
    message: str | None = Field(default=None, description="How it ended, or the error it failed with.")


class RunDetail(RunStatus):
    """One run with its tables: recorded as it goes, and how each table ended once it is over."""

    request: dict[str, Any] | None = Field(default=None, description="The request a server accepted (API runs).")
    cancel_requested: bool = False
    error: str | None = Field(default=None, description="Why the run could not start, when it could not.")
    tables: list[RunTable]


class RunEvent(BaseModel):
    """One event of a run, as the live stream and the event log show it."""

    model_config = ConfigDict(frozen=True)

    id: int | None = Field(default=None, description="Its id in the store's event log (live progress has none).")
    at: datetime
    kind: str
    run_id: int | None
    task_id: int | None
    table: str | None
    message: str
    data: dict[str, Any]

    @classmethod
    def from_event(cls, event: Event) -> RunEvent:
        data = event.data()
        table = event.table or data.pop("table", None)
        data.pop("table", None)
        return cls(
            at=event.at,
            kind=event_kind(event),
            run_id=event.run_id,
            task_id=event.task_id,
            table=table,
            message=event.message(),
            data=data,
        )

    @classmethod
    def from_row(cls, row: EventRow) -> RunEvent:
        data = dict(row.data or {})
        table = data.pop("table", None)
        return cls(
            id=row.id,
            at=row.ts,
            kind=row.kind,
            run_id=row.run_id,
            task_id=row.task_id,
            table=str(table) if table is not None else None,
            message=row.message,
            data=data,
        )


def start(
    app: AppContext, command: str, args: dict[str, Any], run_id: int | None = None, started_by: str | None = None
) -> RunScope:
    """Record a run's start and give it its scope (id, cancellation, heartbeat, the engine it asked for).
    With ``run_id``, the run
    was recorded when a server accepted it, and this process has claimed it."""
    if run_id is None:
        run_id = app.store.start_run(
            command, str(app.config.path), args, owner=process_identity(), started_by=started_by
        ).id
    keeper = LeaseKeeper(app.store, Owner.for_run(run_id), app.config.migrate.lease_seconds)
    scope = RunScope(app, run_id, command, keeper, engine=args.get("engine"))
    scope.publish(RunStarted(command=command, args=args))
    return scope


class _WayCounter:
    """Counts the ``file-copied`` events of one run by the way the bytes went (engines' worker threads publish)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.run_id != self.run_id or event_kind(event) != FileCopied.kind:
            return
        way = str(event.data().get("way", ""))
        if way:
            with self._lock:
                self.counts[way] = self.counts.get(way, 0) + 1


def execute(scope: RunScope, body: Callable[[RunReport], None]) -> RunResult:
    """Run ``body`` in the recorded run, then write its report and record how it ended, always."""
    report = RunReport(run_id=scope.run_id, kind=scope.command)
    report_error: str | None = None
    ways = _WayCounter(scope.run_id)
    stop_counting = scope.app.bus.subscribe(ways)
    try:
        body(report)
    except KeyboardInterrupt:
        scope.cancel.set()
        report.interrupted = True
    finally:
        if scope.cancel.is_set():  # cancelled from elsewhere (the API): the run ends as Ctrl-C ends it
            report.interrupted = True
        report.outcomes.sort(key=lambda o: o.source)
        try:
            if scope.command in REPORTED:
                from icebridge.app.reports import write_reports

                write_reports(scope, report)
        except ReportWriteError as exc:
            report_error = str(exc)
        finally:
            stop_counting()
            summary = report.summary()
            if ways.counts:  # files copied byte for byte, by the way their bytes went
                summary["files_by_way"] = dict(sorted(ways.counts.items()))
            outcomes = [{**dataclasses.asdict(o), "status": str(o.status)} for o in report.outcomes]
            scope.store.finish_run(scope.run_id, report.status, summary, outcomes=outcomes)
            scope.publish(RunFinished(command=scope.command, status=report.status, summary=summary))
            _export_audit(scope)
    return RunResult(
        run_id=report.run_id,
        kind=report.kind,
        status=report.status,
        summary=report.summary(),
        tables=report.outcomes,
        report=report.report_path,
        data_docs=report.data_docs_path,
        message=report.notice,
        report_error=report_error,
    )


def _export_audit(scope: RunScope) -> None:
    """``audit.iceberg_table``: the run's steps also go to the destination catalogs' audit tables."""
    from icebridge.app.audit import export_after_run
    from icebridge.events import Note

    problem = export_after_run(scope.app)
    if problem is not None:
        scope.publish(Note(name="audit-export-failed", text=problem))


class RunService:
    """Starts runs and carries them out in this process (the CLI; the server's workers do the same)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def run(
        self,
        request: RunRequest,
        on_start: Callable[[RunScope], None] | None = None,
        *,
        run_id: int | None = None,
        started_by: str | None = None,
    ) -> RunResult:
        """Carry out ``request`` here and now; ``on_start`` sees the scope once the run is recorded.

        ``run_id`` is a run a server accepted (``submit``) and this process claimed: it is carried out
        under that id instead of a new one. ``started_by`` is who asked for a new run.
        """
        handler = getattr(self, f"_{request.command}")

        def begin(command: str, args: dict[str, Any]) -> RunScope:
            scope = start(self.app, command, args, run_id=run_id, started_by=started_by)
            (on_start or (lambda _scope: None))(scope)
            return scope

        return handler(request, begin)  # type: ignore[no-any-return]

    def check(self, request: RunRequest) -> None:
        """Raise what carrying out ``request`` would raise for bad input (a pattern matching nothing, an
        unknown engine), before anything is recorded; reads only."""
        from icebridge.app.plans import PlanService
        from icebridge.app.tasks import select_tasks

        if request.command == "migrate":
            PlanService(self.app).prepare(request.tables, engine=request.engine)
        elif request.command == "sync" and request.engine not in (None, "local", "faulty"):
            raise UsageError(f"--engine {request.engine}: sync replays commits with the local engine only")
        elif request.command == "validate" and request.engine is not None:
            from icebridge.phases.validate import check_engine

            check_engine(request.engine, self.app.config)
            select_tasks(self.app, request.tables)
        else:
            select_tasks(self.app, request.tables)

    def submit(self, request: RunRequest, started_by: str | None = None) -> RunDetail:
        """Check ``request`` and record it as a queued run for a server's workers to claim; nothing runs yet."""
        self.check(request)
        args = request.model_dump(exclude={"command"})
        row = self.app.store.queue_run(
            request.command, str(self.app.config.path), args, request.model_dump(mode="json"), started_by
        )
        return self._detail(row)

    def detail(self, run_id: int) -> RunDetail:
        """One run with its tables (NotFoundError when the store has no such run)."""
        return self._detail(self.get(run_id))

    def get(self, run_id: int) -> RunRow:
        """The run's row (NotFoundError when the store has no such run)."""
        row = self.app.store.get_run(run_id)
        if row is None:
            raise NotFoundError(f"no run {run_id} in the state store; GET /api/v1/runs lists the runs")
        return row

    def recent(self, limit: int = 20, before: int | None = None) -> list[RunStatus]:
        """The newest runs first (older than run ``before`` when given)."""
        return [run_status(self.app, r) for r in self.app.store.list_runs(limit=limit, before=before)]

    def events(self, run_id: int, after: int | None = None, limit: int = 1000) -> list[RunEvent]:
        """A run's events from the store's event log, oldest first (after the event ``after`` when given)."""
        self.get(run_id)
        return [RunEvent.from_row(r) for r in self.app.store.events(run_id=run_id, after=after or 0, limit=limit)]

    def _detail(self, row: RunRow) -> RunDetail:
        store = self.app.store
        if row.outcomes is not None:
            tables = [
                RunTable(
                    source=o["source"],
                    destination=o["destination"],
                    phase=o["phase"],
                    status=o["status"],
                    rows=int(o.get("rows") or 0),
                    bytes=int(o.get("bytes") or 0),
                    seconds=o.get("seconds"),
                    message=o.get("message") or None,
                )
                for o in row.outcomes
            ]
        else:
            progress = store.run_progress(row.id) if not row.finished else {}
            tables = []
            for task in store.run_tasks(row.id):
                files, rows, size = progress.get(task.id, (None, task.rows, task.bytes))
                tables.append(
                    RunTable(
                        source=task.source,
                        destination=task.destination,
                        phase=str(task.phase),
                        status=str(task.status),
                        rows=int(rows or 0),
                        bytes=int(size or 0),
                        files=files,
                        message=task.error,
                    )
                )
        error = row.summary.get("error") if isinstance(row.summary.get("error"), str) else None
        return RunDetail(
            **run_status(self.app, row).model_dump(),
            request=row.request,
            cancel_requested=row.cancel_requested_at is not None,
            error=error,
            tables=tables,
        )

    def _migrate(self, request: RunRequest, begin: Callable[[str, dict[str, Any]], RunScope]) -> RunResult:
        from icebridge.app.plans import PlanService
        from icebridge.phases.plan import source_places
        from icebridge.selection import matches

        plans = PlanService(self.app)
        prepared = plans.prepare(request.tables, engine=request.engine)  # bad input stops before a run exists
        args: dict[str, Any] = {"tables": request.tables, "engine": request.engine}
        if request.allow_reload:
            args["allow_reload"] = True
        scope = begin("migrate", args)

        def body(report: RunReport) -> None:
            findings = [f for i in prepared.items for f in i.findings] + prepared.findings
            scope.store.add_findings(scope.run_id, findings)
            for finding in prepared.findings:
                if finding.severity is Severity.BLOCKER:
                    report.outcomes.append(_blocked(finding.table, "", [finding]))
            places = source_places(self.app, prepared.facts)
            known = {t.source: t for t in scope.store.list_tasks()}
            runs, todo = [], []
            reload = request.allow_reload
            for item in prepared.items:
                task = known.get(str(item.source))
                if task is not None and runner.cut_over(task):  # done: its plan and its source no longer matter
                    report.outcomes.append(_done(task, "already cut over"))
                elif task is not None and runner.migrated(task):  # synced when its source moved on
                    runs.append(TableRun(scope, task, runner.SYNC, places, allow_reload=reload))
                else:
                    todo.append(item)
            planned = {str(i.source) for i in prepared.items}
            for task in known.values():  # cut over: its source left the foreign catalog, the task stays
                if task.source not in planned and runner.cut_over(task) and matches(task.source, request.tables):
                    report.outcomes.append(_done(task, "already cut over"))
            for item, task in plans.save(todo):
                if task is None:
                    report.outcomes.append(_blocked(str(item.source), str(item.destination or ""), item.findings))
                else:
                    runs.append(TableRun(scope, task, runner.MIGRATE, places, allow_reload=reload))
            runner.run_tables(scope, runs, report)

        return execute(scope, body)

    def _over_tasks(
        self,
        request: RunRequest,
        begin: Callable[[str, dict[str, Any]], RunScope],
        pipeline: Pipeline,
        eligible: Callable[[Any], bool],
        nothing: str,
    ) -> RunResult:
        from icebridge.app.tasks import select_tasks
        from icebridge.phases.plan import source_places

        tasks = [t for t in select_tasks(self.app, request.tables) if eligible(t)]
        args: dict[str, Any] = {"tables": request.tables}
        for key in ("level", "watch", "engine"):
            if getattr(request, key) is not None:
                args[key] = getattr(request, key)
        for key in ("allow_reload", "discard_destination_writes"):
            if getattr(request, key):
                args[key] = True
        scope = begin(request.command, args)

        def body(report: RunReport) -> None:
            if not tasks:
                report.notice = nothing
                return
            places = source_places(self.app, self.app.store.load_inventory())
            while True:
                runs = [
                    TableRun(
                        scope,
                        scope.store.get_task_by_id(t.id),
                        pipeline,
                        places,
                        level=request.level,
                        allow_reload=request.allow_reload,
                        discard_writes=request.discard_destination_writes,
                    )
                    for t in tasks
                ]
                report.outcomes.clear()  # a watching sync reports its last round
                runner.run_tables(scope, runs, report)
                if request.watch is None or report.interrupted or scope.cancel.wait(request.watch):
                    return

        return execute(scope, body)

    def _sync(self, request: RunRequest, begin: Callable[[str, dict[str, Any]], RunScope]) -> RunResult:
        nothing = "no migrated table matches; run 'icebridge migrate' first"
        return self._over_tasks(request, begin, runner.SYNC, runner.syncable, nothing)

    def _validate(self, request: RunRequest, begin: Callable[[str, dict[str, Any]], RunScope]) -> RunResult:
        from icebridge.phases.validate import check_engine

        check_engine(request.engine, self.app.config)  # before the run is recorded
        nothing = "no migrated table matches; run 'icebridge migrate' first"
        return self._over_tasks(request, begin, runner.VALIDATE, runner.validatable, nothing)

    def _cutover(self, request: RunRequest, begin: Callable[[str, dict[str, Any]], RunScope]) -> RunResult:
        nothing = "no migrated table matches; run 'icebridge migrate' first"
        return self._over_tasks(request, begin, runner.CUTOVER, lambda _t: True, nothing)

    def _rollback(self, request: RunRequest, begin: Callable[[str, dict[str, Any]], RunScope]) -> RunResult:
        nothing = "nothing left to roll back: no matching table is cut over"
        return self._over_tasks(request, begin, runner.ROLLBACK, runner.ROLLBACK.wanted, nothing)


def _blocked(source: str, destination: str, findings: Any) -> TableOutcome:
    reasons = "; ".join(f.message for f in findings if f.severity is Severity.BLOCKER)
    return TableOutcome(source, destination, Status.FAILED, "planned", message=f"blocked: {reasons}")


def _done(task: Any, message: str) -> TableOutcome:
    return TableOutcome(
        task.source, task.destination, Status.SUCCEEDED, str(task.phase), task.rows or 0, task.bytes or 0, 0.0, message
    )
