"""Runs: migrate, validate, cut over and roll back tables; every run is recorded from start to finish.

A run is a row in the store from the moment it starts; it ends ``succeeded``, ``failed`` or
``interrupted`` whatever happens in between — even when its report cannot be written — and its
events go out on the process's bus as they happen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from icebridge import runner
from icebridge.context import AppContext, RunScope
from icebridge.errors import ReportWriteError
from icebridge.events import RunFinished, RunStarted
from icebridge.leases import LeaseKeeper, Owner, process_identity
from icebridge.model import Severity, Status
from icebridge.runner import Pipeline, RunReport, TableOutcome, TableRun

Command = Literal["migrate", "validate", "cutover", "rollback"]
REPORTED = frozenset({"migrate", "validate", "cutover"})  # runs that validate write an HTML report


class RunRequest(BaseModel):
    """What to run: a command over the tables matching a glob."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Command
    tables: str | None = Field(
        default=None, description="Only tables matching this glob (catalog.ns.table or ns.table)."
    )
    engine: str | None = Field(default=None, description="migrate: the engine for this run, over the mapping rules.")
    level: int | None = Field(default=None, ge=1, le=4, description="validate: run levels up to this one.")


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


def start(app: AppContext, command: str, args: dict[str, Any]) -> RunScope:
    """Record a run's start and give it its scope (id, cancellation, heartbeat, the engine it asked for)."""
    row = app.store.start_run(command, str(app.config.path), args, owner=process_identity())
    keeper = LeaseKeeper(app.store, Owner.for_run(row.id), app.config.migrate.lease_seconds)
    scope = RunScope(app, row.id, command, keeper, engine=args.get("engine"))
    scope.publish(RunStarted(command=command, args=args))
    return scope


def execute(scope: RunScope, body: Callable[[RunReport], None]) -> RunResult:
    """Run ``body`` in the recorded run, then write its report and record how it ended, always."""
    report = RunReport(run_id=scope.run_id, kind=scope.command)
    report_error: str | None = None
    try:
        body(report)
    except KeyboardInterrupt:
        scope.cancel.set()
        report.interrupted = True
    finally:
        report.outcomes.sort(key=lambda o: o.source)
        try:
            if scope.command in REPORTED:
                from icebridge.app.reports import write_reports

                write_reports(scope, report)
        except ReportWriteError as exc:
            report_error = str(exc)
        finally:
            summary = report.summary()
            scope.store.finish_run(scope.run_id, report.status, summary)
            scope.publish(RunFinished(command=scope.command, status=report.status, summary=summary))
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


class RunService:
    """Starts runs and carries them out in this process (the CLI; the server's workers do the same)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def run(self, request: RunRequest, on_start: Callable[[RunScope], None] | None = None) -> RunResult:
        """Carry out ``request`` here and now; ``on_start`` sees the scope once the run is recorded."""
        handler = getattr(self, f"_{request.command}")
        return handler(request, on_start or (lambda _scope: None))  # type: ignore[no-any-return]

    def _migrate(self, request: RunRequest, on_start: Callable[[RunScope], None]) -> RunResult:
        from icebridge.app.plans import PlanService
        from icebridge.phases.plan import source_places
        from icebridge.selection import matches

        plans = PlanService(self.app)
        prepared = plans.prepare(request.tables, engine=request.engine)  # bad input stops before a run exists
        scope = start(self.app, "migrate", {"tables": request.tables, "engine": request.engine})
        on_start(scope)

        def body(report: RunReport) -> None:
            findings = [f for i in prepared.items for f in i.findings] + prepared.findings
            scope.store.add_findings(scope.run_id, findings)
            for finding in prepared.findings:
                if finding.severity is Severity.BLOCKER:
                    report.outcomes.append(_blocked(finding.table, "", [finding]))
            places = source_places(self.app, prepared.facts)
            known = {t.source: t for t in scope.store.list_tasks()}
            runs, todo = [], []
            for item in prepared.items:
                task = known.get(str(item.source))
                if task is not None and runner.migrated(task):  # done: its plan and its source no longer matter
                    report.outcomes.append(_done(task, "already cut over" if runner.cut_over(task) else "already done"))
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
                    runs.append(TableRun(scope, task, runner.MIGRATE, places))
            runner.run_tables(scope, runs, report)

        return execute(scope, body)

    def _over_tasks(
        self,
        request: RunRequest,
        on_start: Callable[[RunScope], None],
        pipeline: Pipeline,
        eligible: Callable[[Any], bool],
        nothing: str,
    ) -> RunResult:
        from icebridge.app.tasks import select_tasks
        from icebridge.phases.plan import source_places

        tasks = [t for t in select_tasks(self.app, request.tables) if eligible(t)]
        args: dict[str, Any] = {"tables": request.tables}
        if request.level is not None:
            args["level"] = request.level
        scope = start(self.app, request.command, args)
        on_start(scope)

        def body(report: RunReport) -> None:
            if not tasks:
                report.notice = nothing
                return
            places = source_places(self.app, self.app.store.load_inventory())
            runs = [TableRun(scope, t, pipeline, places, level=request.level) for t in tasks]
            runner.run_tables(scope, runs, report)

        return execute(scope, body)

    def _validate(self, request: RunRequest, on_start: Callable[[RunScope], None]) -> RunResult:
        nothing = "no migrated table matches; run 'icebridge migrate' first"
        return self._over_tasks(request, on_start, runner.VALIDATE, runner.validatable, nothing)

    def _cutover(self, request: RunRequest, on_start: Callable[[RunScope], None]) -> RunResult:
        nothing = "no migrated table matches; run 'icebridge migrate' first"
        return self._over_tasks(request, on_start, runner.CUTOVER, lambda _t: True, nothing)

    def _rollback(self, request: RunRequest, on_start: Callable[[RunScope], None]) -> RunResult:
        nothing = "nothing left to roll back: no matching table is cut over"
        return self._over_tasks(request, on_start, runner.ROLLBACK, runner.ROLLBACK.wanted, nothing)


def _blocked(source: str, destination: str, findings: Any) -> TableOutcome:
    reasons = "; ".join(f.message for f in findings if f.severity is Severity.BLOCKER)
    return TableOutcome(source, destination, Status.FAILED, "planned", message=f"blocked: {reasons}")


def _done(task: Any, message: str) -> TableOutcome:
    return TableOutcome(
        task.source, task.destination, Status.SUCCEEDED, str(task.phase), task.rows or 0, task.bytes or 0, 0.0, message
    )
