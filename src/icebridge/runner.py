"""The per-table state machine: resume first, several tables at once, transient errors retried.

One table's failure is recorded on its row and never stops the others. A run with a failed table
reports failure (the CLI exits non-zero).
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from sqlalchemy.exc import OperationalError

from icebridge.engines import BatchCommit, strategy_spec
from icebridge.errors import (
    IceBridgeError,
    LeaseLostError,
    PlanError,
    SourceTableMissingError,
    StaleTaskError,
    StateError,
    TaskHeldError,
    TerminalError,
    ValidationFailedError,
)
from icebridge.leases import LeaseKeeper, Owner, TaskCancel, describe, is_dead
from icebridge.ledger import FileLedger
from icebridge.locations import Place
from icebridge.model import Finding, Phase, PlanItem, Severity, Status, Strategy, TableRef
from icebridge.phases import copy as copy_phase
from icebridge.phases import cutover as cutover_phase
from icebridge.phases import inventory as inventory_phase
from icebridge.phases import plan as plan_phase
from icebridge.phases import scaffold as scaffold_phase
from icebridge.phases import validate as validate_phase

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import Context
    from icebridge.store import TaskRow

T = TypeVar("T")
DONE_PHASES = {Phase.MIGRATED, Phase.CUT_OVER}


@dataclass(frozen=True)
class TableOutcome:
    """How one table ended in a run."""

    source: str
    destination: str
    status: str
    phase: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    message: str = ""


@dataclass
class RunReport:
    run_id: int
    kind: str
    outcomes: list[TableOutcome] = field(default_factory=list)
    interrupted: bool = False
    report_path: str | None = None
    data_docs_path: str | None = None

    @property
    def failed(self) -> list[TableOutcome]:
        return [o for o in self.outcomes if o.status == Status.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def summary(self) -> dict[str, Any]:
        return {
            "tables": len(self.outcomes),
            "succeeded": sum(o.status == Status.SUCCEEDED for o in self.outcomes),
            "failed": len(self.failed),
            "skipped": sum(o.status == Status.SKIPPED for o in self.outcomes),
            "rows": sum(o.rows for o in self.outcomes),
            "bytes": sum(o.bytes for o in self.outcomes),
            "interrupted": self.interrupted,
        }


class _Interrupted(Exception):
    pass


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, IceBridgeError):
        return exc.transient
    # A locked SQLite catalog or a catalog commit that lost a race: worth another try.
    return isinstance(exc, CommitFailedException | OperationalError | ConnectionError | TimeoutError)


def with_retries(ctx: Context, what: str, fn: Callable[[], T]) -> T:
    """Call ``fn``; transient errors are retried with exponential backoff, terminal ones raised at once."""
    settings = ctx.config.migrate
    for attempt in range(1, settings.max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not _is_transient(exc) or attempt == settings.max_attempts or ctx.cancel.is_set():
                raise
            delay = settings.backoff_seconds * (2 ** (attempt - 1))
            ctx.store.event(
                "retry",
                f"{what}: attempt {attempt} failed ({exc}); retrying in {delay:.1f}s",
                run_id=ctx.run_id,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def validate_and_record(
    ctx: Context,
    task: TaskRow,
    source: Table,
    destination: Table,
    levels: Sequence[int] | None = None,
    final: bool = False,
) -> list[validate_phase.ComparatorResult]:
    """Run the validation levels that fit the task's strategy and store every comparator's result."""
    results = validate_phase.run(
        source,
        task.source_snapshot_id,
        destination,
        strategy=Strategy(task.strategy),
        levels=levels,
        workers=ctx.config.migrate.validation_threads(),
    )
    for r in results:
        details = {"summary": r.summary, **r.details}
        if final:
            details["final"] = True
        ctx.store.record_validation(task.id, ctx.run_id, r.level, r.comparator, r.passed, details)
    return results


def _failures(results: list[validate_phase.ComparatorResult]) -> str:
    return "; ".join(f"level {r.level} {r.comparator}: {r.summary}" for r in results if not r.passed)


def _error_kind(exc: BaseException) -> str:
    return "transient" if _is_transient(exc) else "terminal"


def _message(exc: BaseException) -> str:
    if isinstance(exc, IceBridgeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------------------- planning


def prepare(
    ctx: Context, pattern: str | None, refresh: bool = False, engine: str | None = None
) -> tuple[list[PlanItem], list[Finding]]:
    """Inventory (saved or fresh) and plan, restricted to ``pattern``; raises PlanError on a rule matching nothing."""
    plan_phase.check_engine(ctx.config, engine)  # a bad --engine stops here, before the inventory is written
    facts, findings = inventory_phase.run(ctx, refresh=refresh)
    # unreadable tables still exist: a rule that matches only them is not a typo
    known = [t.source for t in ctx.store.list_tasks()] + [f.table for f in findings]
    plan_phase.check_rules(ctx, facts, known)
    items = plan_phase.build(ctx, facts, engine=engine)
    chosen = set(plan_phase.select([str(i.source) for i in items], pattern))
    items = [i for i in items if str(i.source) in chosen]
    findings = [f for f in findings if not pattern or plan_phase.select([f.table], pattern)]
    if pattern and not items and not findings:
        raise PlanError(f"--tables {pattern!r} matches no planned table; see 'icebridge plan' for the names")
    return items, findings


def save_plan(ctx: Context, items: list[PlanItem]) -> list[tuple[PlanItem, TaskRow | None]]:
    """Record a task for every unblocked item (blocked ones get none), in one transaction."""
    ready = [i for i in items if not i.blocked and i.destination is not None]
    tasks = ctx.store.plan_tasks([(str(i.source), str(i.destination), str(i.strategy), i.reason) for i in ready])
    saved = {str(t.source): t for t in tasks}
    return [(item, saved.get(str(item.source))) for item in items]


# ------------------------------------------------------------------------------------------ migrate


class _TaskRun:
    """Drives one task through scaffold → copy → validate while holding its lease."""

    def __init__(
        self, ctx: Context, task: TaskRow, keeper: LeaseKeeper, places: list[Place], engine: str | None = None
    ) -> None:
        self.ctx = ctx
        self.task = task
        self.engine = engine  # the engine chosen for the run (--engine), when it carries the task's strategy
        self.keeper = keeper
        self.places = places  # every source folder of the estate: never written, never deleted
        self.cancel = TaskCancel(ctx.cancel, keeper, task.id)
        self.held = False
        self.started = time.monotonic()  # reset when the worker takes it, so queueing is not counted

    @property
    def store(self) -> Any:
        return self.ctx.store

    def run(self) -> TableOutcome:
        ctx = self.ctx
        self.started = time.monotonic()
        try:
            claimed = claim(ctx, self.task, self.keeper, Phase.SCAFFOLD, lambda t: not _migrated(t))
        except TaskHeldError as held:
            return _skipped(self.task, held)
        if claimed is None:  # another run finished it since it was listed
            self.task = self.store.get_task_by_id(self.task.id)
            return self._outcome("already done")
        self.task = claimed
        try:
            ctx.progress("table-start", {"table": self.task.source})
            source = with_retries(
                ctx, self.task.source, lambda: ctx.catalogs.load_table(TableRef.parse(self.task.source))
            )
            ledger = FileLedger(
                self.store, self.task.id, ctx.run_id, str(self.keeper.owner), [*self.places, *_places_of(source)]
            )
            with ledger.active():
                snapshot_id = self._pin(source)
                destination = self._scaffold(source)
                self._copy(source, destination, snapshot_id, ledger)
                self._validate(source, snapshot_id, destination)
                rows, size = _destination_totals(destination)
            self.task = self.store.complete_task(self.task, Phase.MIGRATED, rows=rows, bytes=size)
            return self._outcome("migrated and validated")
        except BaseException as exc:
            return self._fail(exc)
        finally:
            self.keeper.released(self.task.id)

    def _pin(self, source: Table) -> int | None:
        snapshot = source.current_snapshot()
        if self.task.source_snapshot_id is not None:
            pinned: int | None = self.task.source_snapshot_id
            if source.snapshot_by_id(pinned) is None:  # type: ignore[arg-type]
                raise TerminalError(
                    f"{self.task.source}: pinned snapshot {pinned} no longer exists in the source (expired?); "
                    "drop the destination table and 'icebridge rollback'/re-plan this table"
                )
        else:
            pinned = snapshot.snapshot_id if snapshot else None
        self.task = self.store.advance_task(self.task, Phase.SCAFFOLD, source_snapshot_id=pinned)
        return pinned

    def _scaffold(self, source: Table) -> Table:
        dest_ref = TableRef.parse(self.task.destination)
        destination, result = with_retries(
            self.ctx, self.task.source, lambda: scaffold_phase.run(self.ctx, source, dest_ref)
        )
        self.store.event("scaffold", f"{dest_ref}: {result.message}", run_id=self.ctx.run_id, task_id=self.task.id)
        self.task = self.store.advance_task(self.task, Phase.COPY)
        return destination

    def _copy(self, source: Table, destination: Table, snapshot_id: int | None, ledger: FileLedger) -> None:
        if snapshot_id is None:
            return
        strategy = self.task.strategy
        if not strategy_spec(strategy).remote_markers:  # a remote engine settles its own runs (see engines/)
            progress = copy_phase.destination_progress(destination, self.task.source)
            recorded = {c.batch for c in self.store.checkpoints(self.task.id, snapshot_id)}
            for batch in sorted(progress.batches - recorded):  # committed but not recorded before a crash
                self.store.record_checkpoint(self.task.id, self.ctx.run_id, snapshot_id, batch, None, 0, 0, 0)
                self.store.event("settled", f"batch {batch} found committed in the destination", task_id=self.task.id)

        def on_commit(commit: BatchCommit) -> None:
            self.store.record_checkpoint(
                self.task.id,
                self.ctx.run_id,
                snapshot_id,
                commit.batch,
                commit.dest_snapshot_id,
                commit.files,
                commit.rows,
                commit.bytes,
                commit.seconds,
            )
            self.ctx.progress("batch", {"table": self.task.source, "batch": commit.batch, "rows": commit.rows})

        def on_progress(files: int, size: int) -> None:  # called from the engine's worker threads too
            self.ctx.progress("copy-progress", {"table": self.task.source, "files": files, "bytes": size})

        def on_event(kind: str, message: str, data: dict[str, Any]) -> None:  # an engine's report, kept in the log
            self.store.event(kind, message, run_id=self.ctx.run_id, task_id=self.task.id, data=data)

        result = with_retries(
            self.ctx,
            self.task.source,
            lambda: copy_phase.run(
                self.ctx,
                self.task,
                source,
                destination,
                snapshot_id,
                strategy,
                on_commit,
                self.cancel,
                ledger,
                engine=self.engine,
                on_progress=on_progress,
                on_event=on_event,
            ),
        )
        self.store.event(
            "copied",
            f"{result.batches_total} batches ({result.batches_skipped} already done), {result.rows} rows written",
            run_id=self.ctx.run_id,
            task_id=self.task.id,
        )

    def _validate(self, source: Table, snapshot_id: int | None, destination: Table) -> None:
        self.task = self.store.advance_task(self.task, Phase.VALIDATE)
        destination.refresh()
        results = validate_and_record(self.ctx, self.task, source, destination)
        if any(not r.passed for r in results):
            raise ValidationFailedError(f"{self.task.source}: validation failed: {_failures(results)}")

    def _fail(self, exc: BaseException) -> TableOutcome:
        if isinstance(exc, LeaseLostError) or self.cancel.lease_lost:
            return _skipped(self.task, exc)
        interrupted = isinstance(exc, KeyboardInterrupt) or self.ctx.cancel.is_set()
        message = "interrupted; run the command again to resume" if interrupted else _message(exc)
        message = self.ctx.config.redact(message)
        if not isinstance(exc, IceBridgeError | KeyboardInterrupt):
            self.store.event(
                "error",
                message,
                run_id=self.ctx.run_id,
                task_id=self.task.id,
                data={"traceback": traceback.format_exc(limit=8)},
            )
        try:
            self.task = self.store.fail_task(
                self.task, Phase(self.task.phase), message, "transient" if interrupted else _error_kind(exc)
            )
        except StateError:
            pass
        return self._outcome(message, failed=True)

    def _outcome(self, message: str, failed: bool = False) -> TableOutcome:
        return TableOutcome(
            source=self.task.source,
            destination=self.task.destination,
            status=Status.FAILED if failed else Status.SUCCEEDED,
            phase=str(self.task.phase),
            rows=self.task.rows or 0,
            bytes=self.task.bytes or 0,
            seconds=round(time.monotonic() - self.started, 3),
            message=message,
        )


def claim(
    ctx: Context, task: TaskRow, keeper: LeaseKeeper, phase: Phase, wanted: Callable[[TaskRow], bool]
) -> TaskRow | None:
    """Take the task's lease for this run; None when, read again, it no longer needs the work.

    The claim is conditional on the version that was read, so a table another run finished
    meanwhile is not done twice. A holder that died on this machine is taken over at once; a live
    holder (or one whose lease has not expired) raises :class:`TaskHeldError`.
    """
    assert ctx.run_id is not None, "tasks are claimed inside a recorded run"
    owner = str(keeper.owner)
    take_from: str | None = None
    for _attempt in range(8):
        if not wanted(task):
            return None
        try:
            claimed = ctx.store.claim_task(
                task.id, owner, ctx.run_id, phase, keeper.lease_seconds, take_from=take_from, version=task.version
            )
        except StaleTaskError:
            task = ctx.store.get_task_by_id(task.id)
            continue
        except TaskHeldError as held:
            if take_from is not None or not is_dead(held.holder):
                raise
            take_from = held.holder
            task = ctx.store.get_task_by_id(task.id)
            continue
        if take_from is not None:
            ctx.store.event(
                "taken-over",
                f"{task.source}: taken over from {describe(take_from)}, whose process is gone",
                run_id=ctx.run_id,
                task_id=task.id,
            )
        keeper.holding(task.id)
        return claimed  # type: ignore[no-any-return]
    raise StateError(f"{task.source}: the task kept changing while it was being claimed; run the command again")


def _migrated(task: TaskRow) -> bool:
    return Phase(task.phase) in DONE_PHASES and task.status == Status.SUCCEEDED


def _skipped(task: TaskRow, why: BaseException) -> TableOutcome:
    """A table another run holds: left to it, and not a failure of this run."""
    if isinstance(why, TaskHeldError):
        message = f"skipped: held by {describe(why.holder)} since {_clock(why.since)}"
    else:
        message = f"skipped: {why}" if isinstance(why, LeaseLostError) else "skipped: another run took it over"
    return TableOutcome(task.source, task.destination, Status.SKIPPED, str(task.phase), message=message)


def _clock(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "an unknown time"


def _places_of(source: Table) -> list[Place]:
    where = [("location", source.metadata.location)]
    where += [(k, source.properties[k]) for k in ("write.data.path", "write.metadata.path") if source.properties.get(k)]
    return [Place(loc, f"the source table's {key}") for key, loc in where]


def _destination_totals(destination: Table) -> tuple[int, int]:
    destination.refresh()
    snapshot = destination.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0, 0
    props = snapshot.summary.additional_properties
    return int(props.get("total-records", 0)), int(props.get("total-files-size", 0))


def _blocked_outcome(item: PlanItem) -> TableOutcome:
    reasons = "; ".join(f.message for f in item.findings if f.severity is Severity.BLOCKER)
    return TableOutcome(
        str(item.source),
        str(item.destination or ""),
        Status.FAILED,
        Phase.PLANNED,
        message=f"blocked: {reasons}",
    )


def run_tasks(ctx: Context, kind: str, work: list[Callable[[], TableOutcome]], report: RunReport) -> RunReport:
    """Run table jobs on a bounded pool; Ctrl-C stops between commits and marks the run interrupted."""
    if not work:
        return report
    with ThreadPoolExecutor(max_workers=ctx.config.migrate.concurrency, thread_name_prefix=kind) as pool:
        futures = [pool.submit(job) for job in work]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                report.outcomes.append(outcome)
                ctx.progress("table-done", {"table": outcome.source, "status": outcome.status})
        except KeyboardInterrupt:
            ctx.cancel.set()
            report.interrupted = True
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled():
                    report.outcomes.append(future.result())
    return report


def _start(ctx: Context, kind: str, args: dict[str, Any]) -> RunReport:
    run = ctx.store.start_run(kind, str(ctx.config.path), args)
    ctx.run_id = run.id
    return RunReport(run_id=run.id, kind=kind)


def _keeper(ctx: Context) -> LeaseKeeper:
    """The heartbeat of the current run's claims."""
    assert ctx.run_id is not None
    return LeaseKeeper(ctx.store, Owner.for_run(ctx.run_id), ctx.config.migrate.lease_seconds)


REPORTED_KINDS = {"migrate", "validate", "cutover"}


def _finish(ctx: Context, report: RunReport) -> RunReport:
    status = "interrupted" if report.interrupted else ("failed" if report.failed else "succeeded")
    report.outcomes.sort(key=lambda o: o.source)
    if report.kind in REPORTED_KINDS:
        write_reports(ctx, report, status)
    ctx.store.finish_run(report.run_id, status, report.summary())
    return report


def write_reports(ctx: Context, report: RunReport, status: str) -> None:
    """The run's HTML validation report (and Great Expectations Data Docs when the extra is installed)."""
    from icebridge.validation import gx
    from icebridge.validation.report import TableValidation, write_html_report

    tasks = {t.source: t for t in ctx.store.list_tasks()}
    tables = []
    for outcome in report.outcomes:
        task = tasks.get(outcome.source)
        rows = ctx.store.validations(task.id, report.run_id) if task else []
        if not rows and outcome.message in ("already done", "already cut over"):
            continue  # nothing was checked in this run
        error = outcome.message if outcome.status == Status.FAILED and not rows else None
        strategy = task.strategy if task else ""
        tables.append(TableValidation.from_rows(outcome.source, outcome.destination, rows, strategy, error))
    if not tables:
        return
    folder = ctx.config.reports_dir / f"run-{report.run_id}"
    run_info = {
        "run": report.run_id,
        "command": report.kind,
        "status": status,
        "configuration": str(ctx.config.path),
        **{k: v for k, v in report.summary().items() if k != "interrupted"},
    }
    path = write_html_report(folder / "report.html", run_info, tables)
    report.report_path = str(path)
    ctx.store.set_run_report(report.run_id, str(path))
    if gx.available():
        try:
            docs = gx.write_data_docs(folder, tables)
        except Exception as exc:  # the IceBridge report stands; Data Docs are a second rendering of it
            ctx.store.event(
                "data-docs-failed", f"Great Expectations Data Docs not written: {exc}", run_id=report.run_id
            )
            return
        report.data_docs_path = str(docs) if docs else None


def migrate(ctx: Context, pattern: str | None = None, engine: str | None = None) -> RunReport:
    """Scaffold, copy and validate every planned table not migrated yet; resumes interrupted work first.

    The saved inventory is used (``icebridge inventory --refresh`` reads the catalogs again); each
    table's snapshot is pinned from the live source when its copy starts.
    """
    items, findings = prepare(ctx, pattern, engine=engine)  # bad input stops here, before a run is recorded
    report = _start(ctx, "migrate", {"tables": pattern, "engine": engine})
    try:
        ctx.store.add_findings(report.run_id, [f for i in items for f in i.findings] + findings)
        for finding in findings:
            if finding.severity is Severity.BLOCKER:
                report.outcomes.append(
                    TableOutcome(finding.table, "", Status.FAILED, Phase.PLANNED, message=finding.message)
                )
        keeper = _keeper(ctx)
        places = plan_phase.source_places(ctx, ctx.store.load_inventory())
        work: list[Callable[[], TableOutcome]] = []
        for item, task in save_plan(ctx, items):
            if task is None:
                report.outcomes.append(_blocked_outcome(item))
            elif _migrated(task):
                report.outcomes.append(
                    TableOutcome(
                        task.source,
                        task.destination,
                        Status.SUCCEEDED,
                        task.phase,
                        task.rows or 0,
                        task.bytes or 0,
                        0.0,
                        "already done",
                    )
                )
            else:
                work.append(_TaskRun(ctx, task, keeper, places, engine).run)
        with keeper:
            run_tasks(ctx, "migrate", work, report)
    except KeyboardInterrupt:
        report.interrupted = True
    return _finish(ctx, report)


# ---------------------------------------------------------------------------- cutover and rollback


def _tasks(ctx: Context, pattern: str | None) -> list[TaskRow]:
    tasks = ctx.store.list_tasks()
    chosen = set(plan_phase.select([t.source for t in tasks], pattern))
    return [t for t in tasks if t.source in chosen]


def _cutover_one(ctx: Context, keeper: LeaseKeeper, task: TaskRow) -> TableOutcome:
    started = time.monotonic()

    def outcome(t: TaskRow, status: Status, message: str) -> TableOutcome:
        return TableOutcome(
            t.source,
            t.destination,
            status,
            str(t.phase),
            t.rows or 0,
            t.bytes or 0,
            round(time.monotonic() - started, 3),
            message,
        )

    if _cut_over(task):
        return outcome(task, Status.SUCCEEDED, "already cut over")
    ready = Phase(task.phase) in {Phase.MIGRATED, Phase.CUTOVER, Phase.ROLLED_BACK} and (
        task.status == Status.SUCCEEDED or Phase(task.phase) is Phase.CUTOVER
    )
    if not ready:
        return outcome(
            task,
            Status.FAILED,
            f"not migrated yet (phase {task.phase}, {task.status}); run 'icebridge migrate' first",
        )
    try:
        claimed = claim(ctx, task, keeper, Phase.CUTOVER, lambda t: not _cut_over(t))
    except TaskHeldError as held:
        return _skipped(task, held)
    if claimed is None:
        return outcome(ctx.store.get_task_by_id(task.id), Status.SUCCEEDED, "already cut over")
    task = claimed
    try:
        ref = TableRef.parse(task.source)
        try:
            source = ctx.catalogs.load_table(ref)
        except SourceTableMissingError:
            if task.archived_metadata_location:  # dropped by an earlier, interrupted cut-over
                task = ctx.store.complete_task(task, Phase.CUT_OVER)
                return outcome(task, Status.SUCCEEDED, "cut over (settled an interrupted cut-over)")
            raise
        cutover_phase.check_frozen(task, source)
        destination = ctx.catalogs.load_table(TableRef.parse(task.destination))
        results = validate_and_record(ctx, task, source, destination, final=True)
        if any(not r.passed for r in results):
            raise ValidationFailedError(f"{task.source}: final validation failed: {_failures(results)}")
        task = cutover_phase.archive(ctx, task, source)
        task = ctx.store.complete_task(task, Phase.CUT_OVER)
        return outcome(task, Status.SUCCEEDED, f"cut over; source archived ({task.archived_metadata_location})")
    except LeaseLostError as exc:
        return _skipped(task, exc)
    except Exception as exc:
        try:
            task = ctx.store.fail_task(task, Phase.CUTOVER, _message(exc), _error_kind(exc))
        except StateError:
            pass
        return outcome(task, Status.FAILED, _message(exc))
    finally:
        keeper.released(task.id)


def _cut_over(task: TaskRow) -> bool:
    return Phase(task.phase) is Phase.CUT_OVER and task.status == Status.SUCCEEDED


def _nothing_matches(pattern: str | None, message: str) -> TableOutcome:
    """A failed outcome for a command that found no table to work on (it must not look like success)."""
    return TableOutcome(pattern or "*", "", Status.FAILED, Phase.PLANNED, message=message)


def cutover(ctx: Context, pattern: str | None = None) -> RunReport:
    """Freeze check, final validation and archive of every migrated table matching ``pattern``."""
    report = _start(ctx, "cutover", {"tables": pattern})
    tasks = _tasks(ctx, pattern)
    if not tasks:
        report.outcomes.append(_nothing_matches(pattern, "no migrated table matches; run 'icebridge migrate' first"))
    keeper = _keeper(ctx)
    with keeper:
        run_tasks(ctx, "cutover", [functools.partial(_cutover_one, ctx, keeper, t) for t in tasks], report)
    return _finish(ctx, report)


def _rollback_one(ctx: Context, keeper: LeaseKeeper, task: TaskRow) -> TableOutcome:
    started = time.monotonic()
    if not task.archived_metadata_location:
        return TableOutcome(
            task.source,
            task.destination,
            Status.SUCCEEDED,
            str(task.phase),
            message="nothing to roll back",
        )
    try:
        claimed = claim(ctx, task, keeper, Phase(task.phase), lambda t: t.archived_metadata_location is not None)
    except TaskHeldError as held:
        return _skipped(task, held)
    if claimed is None:
        return TableOutcome(
            task.source, task.destination, Status.SUCCEEDED, str(task.phase), message="nothing to roll back"
        )
    task = claimed
    try:
        task = cutover_phase.restore(ctx, task)
        task = ctx.store.complete_task(task, Phase.ROLLED_BACK)
        return TableOutcome(
            task.source,
            task.destination,
            Status.SUCCEEDED,
            str(task.phase),
            seconds=round(time.monotonic() - started, 3),
            message="source re-registered",
        )
    except (IceBridgeError, NoSuchTableError, OSError) as exc:
        try:
            task = ctx.store.fail_task(task, Phase(task.phase), _message(exc), _error_kind(exc))
        except StateError:
            pass
        return TableOutcome(task.source, task.destination, Status.FAILED, str(task.phase), message=_message(exc))
    finally:
        keeper.released(task.id)


def rollback(ctx: Context, pattern: str | None = None) -> RunReport:
    """Re-register every archived source entry matching ``pattern`` from its recorded metadata location."""
    report = _start(ctx, "rollback", {"tables": pattern})
    tasks = [t for t in _tasks(ctx, pattern) if t.archived_metadata_location]
    if not tasks:
        report.outcomes.append(_nothing_matches(pattern, "no cut-over table matches; nothing to roll back"))
    keeper = _keeper(ctx)
    with keeper:
        run_tasks(ctx, "rollback", [functools.partial(_rollback_one, ctx, keeper, t) for t in tasks], report)
    return _finish(ctx, report)


def validate(ctx: Context, pattern: str | None = None, level: int | None = None) -> RunReport:
    """Validate migrated tables again (read-only on both sides), up to ``level`` when given."""
    report = _start(ctx, "validate", {"tables": pattern, "level": level})
    tasks = [t for t in _tasks(ctx, pattern) if Phase(t.phase) in {Phase.MIGRATED, Phase.VALIDATE, Phase.ROLLED_BACK}]

    def one(task: TaskRow) -> TableOutcome:
        try:
            source = ctx.catalogs.load_table(TableRef.parse(task.source))
            destination = ctx.catalogs.load_table(TableRef.parse(task.destination))
            results = validate_and_record(ctx, task, source, destination, levels=[level] if level else None)
        except Exception as exc:
            return TableOutcome(task.source, task.destination, Status.FAILED, str(task.phase), message=_message(exc))
        failed = [r for r in results if not r.passed]
        proved = sorted({r.level for r in results if r.passed})
        return TableOutcome(
            task.source,
            task.destination,
            Status.FAILED if failed else Status.SUCCEEDED,
            str(task.phase),
            task.rows or 0,
            task.bytes or 0,
            message=_failures(results) if failed else f"levels {', '.join(map(str, proved))} passed",
        )

    if not tasks:
        report.outcomes.append(_nothing_matches(pattern, "no migrated table matches; run 'icebridge migrate' first"))
    run_tasks(ctx, "validate", [functools.partial(one, t) for t in tasks], report)
    return _finish(ctx, report)
