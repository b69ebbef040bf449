"""The per-table state machine: claim, resume, run a pipeline of phases, retry what is transient.

A pipeline is a sequence of per-table phases (``run(work) -> PhaseResult``). For each table the
runner takes the task's lease (a table another run holds is skipped and said so), loads the source,
and runs the phases in order inside the task's file ledger, each retried with backoff on transient
errors. Several tables run at once; one table's failure is recorded on its row and never stops the
others; Ctrl-C stops every table between two commits.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyiceberg.exceptions import CommitFailedException
from sqlalchemy.exc import OperationalError

from icebridge.catalogs import snapshot_totals
from icebridge.errors import (
    IceBridgeError,
    LeaseLostError,
    SourceTableMissingError,
    StaleTaskError,
    StateError,
    TaskHeldError,
)
from icebridge.events import CutoverStepDone, Retried, TableFinished, TableStarted
from icebridge.leases import TaskCancel, describe, is_dead
from icebridge.ledger import FileLedger
from icebridge.locations import Place
from icebridge.model import Phase, Status, TableRef
from icebridge.phases import PhaseResult, TableWork
from icebridge.phases import copy as copy_phase
from icebridge.phases import cutover as cutover_phase
from icebridge.phases import scaffold as scaffold_phase
from icebridge.phases import sync as sync_phase
from icebridge.phases import validate as validate_phase

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import RunScope
    from icebridge.store import TaskRow

T = TypeVar("T")
Step = Callable[[TableWork], PhaseResult]


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
    """What a run did, table by table."""

    run_id: int
    kind: str
    outcomes: list[TableOutcome] = field(default_factory=list)
    interrupted: bool = False
    notice: str | None = None  # a run-level message, e.g. that nothing matched
    report_path: str | None = None
    data_docs_path: str | None = None

    @property
    def failed(self) -> list[TableOutcome]:
        return [o for o in self.outcomes if o.status == Status.FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and self.notice is None

    @property
    def status(self) -> str:
        """How the run ended: interrupted, failed (a table failed, or nothing to do) or succeeded."""
        if self.interrupted:
            return "interrupted"
        return "failed" if self.failed or self.notice is not None else "succeeded"

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


def is_transient(exc: BaseException) -> bool:
    """Whether another try may succeed: our transient errors, a locked database, a lost commit race."""
    if isinstance(exc, IceBridgeError):
        return exc.transient
    return isinstance(exc, CommitFailedException | OperationalError | ConnectionError | TimeoutError)


def error_kind(exc: BaseException) -> str:
    return "transient" if is_transient(exc) else "terminal"


def message_of(exc: BaseException) -> str:
    if isinstance(exc, IceBridgeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def with_retries(scope: RunScope, table: str, what: str, fn: Callable[[], T]) -> T:
    """Call ``fn``; transient errors are retried with exponential backoff, terminal ones raised at once."""
    settings = scope.config.migrate
    for attempt in range(1, settings.max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or attempt == settings.max_attempts or scope.cancel.is_set():
                raise
            delay = settings.backoff_seconds * (2 ** (attempt - 1))
            scope.publish(
                Retried(
                    table=table,
                    what=what,
                    attempt=attempt,
                    delay=delay,
                    error=scope.config.redact(message_of(exc)),
                    error_class=type(exc).__name__,
                )
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def claim(scope: RunScope, task: TaskRow, phase: Phase, wanted: Callable[[TaskRow], bool]) -> TaskRow | None:
    """Take the task's lease for this run; None when, read again, it no longer needs the work.

    The claim is conditional on the version that was read, so a table another run finished
    meanwhile is not done twice. A holder that died on this machine is taken over at once; a live
    holder (or one whose lease has not expired) raises :class:`TaskHeldError`.
    """
    owner, keeper = str(scope.keeper.owner), scope.keeper
    take_from: str | None = None
    for _attempt in range(8):
        if not wanted(task):
            return None
        try:
            claimed = scope.store.claim_task(
                task.id, owner, scope.run_id, phase, keeper.lease_seconds, take_from=take_from, version=task.version
            )
        except StaleTaskError:
            task = scope.store.get_task_by_id(task.id)
            continue
        except TaskHeldError as held:
            if take_from is not None or not is_dead(held.holder):
                raise
            take_from = held.holder
            task = scope.store.get_task_by_id(task.id)
            continue
        keeper.holding(task.id)
        if take_from is not None:
            scope.store.event(
                "taken-over",
                f"{task.source}: taken over from {describe(take_from)}, whose process is gone",
                run_id=scope.run_id,
                task_id=task.id,
            )
        return claimed
    raise StateError(f"{task.source}: the task kept changing while it was being claimed; run the command again")


# ----------------------------------------------------------------------------------------- pipelines


def _open_destination(work: TableWork) -> PhaseResult:
    work.destination = work.scope.catalogs.load_table(TableRef.parse(work.task.destination))
    return PhaseResult(Phase(work.task.phase), "destination loaded")


@dataclass(frozen=True)
class Pipeline:
    """What a command does to one table: which tasks it wants, its phases, and how it finishes."""

    name: str
    steps: tuple[Step, ...]
    wanted: Callable[[TaskRow], bool]  # the task still needs this work (read again at claim time)
    done_message: str  # said of a task that does not need it
    claim_phase: Phase | None = None  # None: the task keeps its phase while claimed
    done_phase: Phase | None = None  # None: the task ends in the phase it had
    source_may_be_missing: bool = False  # cut-over settles a source it dropped before a crash
    load_source: bool = True
    message: str | None = None  # the outcome's message; None: the last phase's
    refuse: Callable[[TaskRow], str | None] = lambda _t: None  # why a task cannot have this work yet


def migrated(task: TaskRow) -> bool:
    return Phase(task.phase) in {Phase.MIGRATED, Phase.CUT_OVER} and task.status == Status.SUCCEEDED


def cut_over(task: TaskRow) -> bool:
    return Phase(task.phase) is Phase.CUT_OVER and task.status == Status.SUCCEEDED


def validatable(task: TaskRow) -> bool:
    return Phase(task.phase) in {Phase.MIGRATED, Phase.VALIDATE, Phase.ROLLED_BACK}


def syncable(task: TaskRow) -> bool:
    """A copied table whose source is still live: migrated, validated (or not), or rolled back."""
    return Phase(task.phase) in {Phase.MIGRATED, Phase.VALIDATE, Phase.ROLLED_BACK}


def _not_migrated(task: TaskRow) -> str | None:
    ready = Phase(task.phase) in {Phase.MIGRATED, Phase.CUTOVER, Phase.ROLLED_BACK, Phase.CUT_OVER} and (
        task.status == Status.SUCCEEDED or Phase(task.phase) is Phase.CUTOVER
    )
    if ready:
        return None
    return f"not migrated yet (phase {task.phase}, {task.status}); run 'icebridge migrate' first"


def _catch_up(work: TableWork) -> PhaseResult:
    """migrate: carry the source commits that arrived during the copy (strategies sync can replay onto)."""
    if work.task.strategy not in sync_phase.REPLAYABLE:
        return PhaseResult(Phase(work.task.phase), f"not synced: strategy {work.task.strategy} keeps its own copy")
    return sync_phase.run(work)


def _sync_only(work: TableWork) -> PhaseResult:
    """sync: replay what the source committed since; a table in step is done without validating again."""
    result = sync_phase.run(work)
    if result.details.get("replayed"):
        return result
    return PhaseResult(result.phase, result.message, {"finished": True})


MIGRATE = Pipeline(
    "migrate",
    (scaffold_phase.run, copy_phase.run, _catch_up, validate_phase.run),
    wanted=lambda t: not migrated(t),
    done_message="already done",
    claim_phase=Phase.SCAFFOLD,
    done_phase=Phase.MIGRATED,
    message="migrated and validated",
)
SYNC = Pipeline(
    "sync",
    (_open_destination, _sync_only, validate_phase.run),  # validation only after something was replayed
    wanted=syncable,
    done_message="not migrated (any more); nothing synced",
    done_phase=Phase.MIGRATED,
)
VALIDATE = Pipeline(
    "validate",
    (_open_destination, validate_phase.run),
    wanted=validatable,
    done_message="not migrated (any more); nothing validated",
)


def _recorded(name: str, fn: Step) -> Step:
    """A cut-over step recorded in the store as it starts and once done (with what it did); a step an
    earlier, interrupted run finished is not done again."""

    def step(work: TableWork) -> PhaseResult:
        recorded = {s.step: s for s in work.store.cutover_steps(work.task.id)}
        if name in recorded and recorded[name].status == "done":
            work.publish(CutoverStepDone(step=name, action="resumed", detail="done by an earlier run"))
            return PhaseResult(Phase(work.task.phase), f"{name}: done by an earlier run")
        work.store.start_cutover_step(work.task.id, work.scope.run_id, name)
        result = fn(work)
        _fault_point(work, name)
        details = {k: v for k, v in result.details.items() if k not in {"finished", "keep"}}
        work.store.finish_cutover_step(work.task.id, name, {"message": result.message, **details})
        work.publish(CutoverStepDone(step=name, action="done", detail=result.message))
        return PhaseResult(result.phase, result.message, {"keep": True} if result.details.get("keep") else {})

    step.__name__, step.__module__ = name, "cutover"
    return step


def _undo(name: str, fn: Callable[[TableWork, dict[str, Any]], PhaseResult]) -> Step:
    """A rollback step: undo the cut-over step ``name`` from its record when it was done, then forget it."""

    def step(work: TableWork) -> PhaseResult:
        recorded = {s.step: s for s in work.store.cutover_steps(work.task.id)}
        if name not in recorded:
            return PhaseResult(Phase(work.task.phase), f"{name}: not done, nothing to undo")
        result = fn(work, recorded[name].details)
        work.store.forget_cutover_step(work.task.id, name)
        work.publish(CutoverStepDone(step=name, action="undone", detail=result.message))
        return result

    step.__name__, step.__module__ = f"undo-{name}", "rollback"
    return step


def _fault_point(work: TableWork, step: str) -> None:
    """Where the fault-injecting engine may end the process: a step's work done, its record not yet."""
    if work.scope.engine == "faulty":
        work.app.engine("faulty").at_step(work.task.source, step)  # type: ignore[attr-defined]


def _undo_archive(work: TableWork) -> PhaseResult:
    """Re-register the archived source (also for a cut-over recorded before steps were), forget the step."""
    result = cutover_phase.restore(work)
    work.store.forget_cutover_step(work.task.id, "archive")
    work.publish(CutoverStepDone(step="archive", action="undone", detail=result.message))
    return result


def _forget_steps(work: TableWork) -> PhaseResult:
    """The cut-over is undone: its remaining records (a freeze never done, a quiet period) are forgotten."""
    for recorded in work.store.cutover_steps(work.task.id):
        work.store.forget_cutover_step(work.task.id, recorded.step)
    work.advance(Phase.ROLLED_BACK)
    return PhaseResult(Phase.ROLLED_BACK, "rolled back")


def rollbackable(task: TaskRow) -> bool:
    """A table cut over, or whose cut-over stopped part way (its completed steps are undone)."""
    return task.archived_metadata_location is not None or Phase(task.phase) in {Phase.CUTOVER, Phase.CUT_OVER}


CUTOVER = Pipeline(
    "cutover",
    (
        cutover_phase.settle,
        _open_destination,
        _recorded("freeze", cutover_phase.freeze),
        _recorded("quiet", cutover_phase.quiet),
        _recorded("sync", sync_phase.run),  # the source moved on since the copy: the final sync carries it
        _recorded("validate", validate_phase.final),
        _recorded("swap", cutover_phase.swap),
        _recorded("archive", cutover_phase.archive),
    ),
    wanted=lambda t: not cut_over(t),
    done_message="already cut over",
    claim_phase=Phase.CUTOVER,
    done_phase=Phase.CUT_OVER,
    source_may_be_missing=True,
    refuse=_not_migrated,
    message=None,
)
ROLLBACK = Pipeline(
    "rollback",
    (
        _open_destination,
        cutover_phase.destination_writes,
        _undo_archive,
        _undo("swap", cutover_phase.unswap),
        _undo("freeze", cutover_phase.unfreeze),
        _forget_steps,
    ),
    wanted=rollbackable,
    done_message="nothing to roll back",
    done_phase=Phase.ROLLED_BACK,
    load_source=False,
)


class TableRun:
    """One task through one pipeline, while holding its lease."""

    def __init__(
        self,
        scope: RunScope,
        task: TaskRow,
        pipeline: Pipeline,
        places: Sequence[Place],
        level: int | None = None,
        allow_reload: bool = False,
        discard_writes: bool = False,
    ) -> None:
        self.scope = scope
        self.task = task
        self.pipeline = pipeline
        self.places = list(places)  # every source folder of the estate: never written, never deleted
        self.level = level
        self.allow_reload = allow_reload
        self.discard_writes = discard_writes
        self.cancel = TaskCancel(scope.cancel, scope.keeper, task.id)
        self.started = time.monotonic()
        self.error_class: str | None = None  # the class of the error a failed table ended with

    def run(self) -> TableOutcome:
        self.started = time.monotonic()  # queueing is not counted
        pipeline, scope = self.pipeline, self.scope
        if scope.cancel.is_set():  # the run was cancelled while this table waited for a worker
            return self._finish(self._outcome(Status.FAILED, "interrupted before it started; run the command again"))
        if pipeline.wanted(self.task) and (reason := pipeline.refuse(self.task)) is not None:
            return self._finish(self._outcome(Status.FAILED, reason))
        try:
            claimed = claim(scope, self.task, pipeline.claim_phase or Phase(self.task.phase), pipeline.wanted)
        except TaskHeldError as held:
            return self._finish(self._skipped(held))
        if claimed is None:  # another run did it since the task was listed
            self.task = scope.store.get_task_by_id(self.task.id)
            return self._finish(self._outcome(Status.SUCCEEDED, pipeline.done_message))
        self.task = claimed
        try:
            outcome = self._work()
        except BaseException as exc:
            outcome = self._fail(exc)
        finally:
            scope.keeper.released(self.task.id)
        return self._finish(outcome)

    def _work(self) -> TableOutcome:
        pipeline, scope = self.pipeline, self.scope
        phase_before = Phase(self.task.phase)
        source = self._load_source() if pipeline.load_source else None
        protected = [*self.places, *(_places_of(source) if source is not None else [])]
        ledger = FileLedger(scope.store, self.task.id, scope.run_id, str(scope.keeper.owner), protected)
        work = TableWork(
            scope,
            self.task,
            source,
            ledger,
            self.cancel,
            level=self.level,
            allow_reload=self.allow_reload,
            discard_writes=self.discard_writes,
        )
        size = snapshot_totals(source, self.task.source_snapshot_id) if source is not None else None
        work.publish(
            TableStarted(
                destination=self.task.destination,
                phase=str(self.task.phase),
                files_total=size.files if size else 0,
                bytes_total=size.bytes if size else 0,
            )
        )
        result: PhaseResult | None = None
        kept: list[str] = []  # what steps asked to be said in the outcome (a sync's replays)
        with ledger.active():
            for step in pipeline.steps:
                result = with_retries(scope, self.task.source, _name(step), lambda s=step: s(work))  # type: ignore[misc]
                self.task = work.task
                if result.details.get("keep"):
                    kept.append(result.message)
                if result.details.get("finished"):
                    break
        copied = pipeline is MIGRATE or pipeline is SYNC
        held = snapshot_totals(work.destination) if copied and work.destination is not None else None
        self.task = scope.store.complete_task(
            work.task,
            pipeline.done_phase or phase_before,
            rows=held.rows if held else None,
            bytes=held.bytes if held else None,
        )
        message = pipeline.message or (result.message if result else "")
        if kept and result is not None and result.message not in kept:
            message = "; ".join([*kept, message])
        elif kept:
            message = "; ".join(kept)
        return self._outcome(Status.SUCCEEDED, message)

    def _load_source(self) -> Table | None:
        ref = TableRef.parse(self.task.source)
        try:
            return with_retries(self.scope, self.task.source, "load", lambda: self.scope.catalogs.load_table(ref))
        except SourceTableMissingError:
            if self.pipeline.source_may_be_missing and self.task.archived_metadata_location:
                return None
            raise

    def _fail(self, exc: BaseException) -> TableOutcome:
        if isinstance(exc, LeaseLostError) or self.cancel.lease_lost:
            return self._skipped(exc)
        interrupted = isinstance(exc, KeyboardInterrupt) or self.scope.cancel.is_set()
        message = "interrupted; run the command again to resume" if interrupted else message_of(exc)
        message = self.scope.config.redact(message)
        if not isinstance(exc, IceBridgeError | KeyboardInterrupt):
            self.scope.store.event(
                "error",
                message,
                run_id=self.scope.run_id,
                task_id=self.task.id,
                data={"traceback": self.scope.config.redact(traceback.format_exc(limit=8))},
            )
        try:
            self.task = self.scope.store.fail_task(
                self.task, Phase(self.task.phase), message, "transient" if interrupted else error_kind(exc)
            )
        except StateError:
            pass
        self.error_class = type(exc).__name__
        return self._outcome(Status.FAILED, message)

    def _skipped(self, why: BaseException) -> TableOutcome:
        """A table another run holds: left to it, and not a failure of this run."""
        if isinstance(why, TaskHeldError):
            message = f"skipped: held by {describe(why.holder)} since {_clock(why.since)}"
        elif isinstance(why, LeaseLostError):
            message = f"skipped: {why}"
        else:
            message = "skipped: another run took it over"
        return self._outcome(Status.SKIPPED, message)

    def _outcome(self, status: Status, message: str) -> TableOutcome:
        return TableOutcome(
            source=self.task.source,
            destination=self.task.destination,
            status=status,
            phase=str(self.task.phase),
            rows=self.task.rows or 0,
            bytes=self.task.bytes or 0,
            seconds=round(time.monotonic() - self.started, 3),
            message=message,
        )

    def _finish(self, outcome: TableOutcome) -> TableOutcome:
        self.scope.publish(
            TableFinished(
                table=outcome.source,
                task_id=self.task.id,
                status=str(outcome.status),
                phase=outcome.phase,
                rows=outcome.rows,
                bytes=outcome.bytes,
                seconds=outcome.seconds,
                outcome=outcome.message,
                error_class=self.error_class,
            )
        )
        return outcome


def _name(step: Step) -> str:
    return f"{getattr(step, '__module__', '').rsplit('.', 1)[-1]}.{getattr(step, '__name__', 'step')}"


def _clock(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "an unknown time"


def _places_of(source: Table) -> list[Place]:
    where = [("location", source.metadata.location)]
    where += [(k, source.properties[k]) for k in ("write.data.path", "write.metadata.path") if source.properties.get(k)]
    return [Place(loc, f"the source table's {key}") for key, loc in where]


def run_tables(scope: RunScope, runs: Sequence[TableRun], report: RunReport) -> RunReport:
    """Run tables on a bounded pool; Ctrl-C stops them between commits and marks the run interrupted."""
    if not runs:
        return report
    with scope.keeper, ThreadPoolExecutor(scope.config.migrate.concurrency, thread_name_prefix=scope.command) as pool:
        futures = [pool.submit(r.run) for r in runs]
        finished: set[Future[TableOutcome]] = set()
        try:
            for future in as_completed(futures):
                report.outcomes.append(future.result())
                finished.add(future)
        except KeyboardInterrupt:
            scope.cancel.set()
            report.interrupted = True
            for future in futures:
                future.cancel()
            for future in futures:  # the running tables stop at their next commit and say so
                if not future.cancelled() and future not in finished:
                    report.outcomes.append(future.result())
    return report
