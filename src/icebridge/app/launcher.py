"""Background runs: a server accepts a run, records it, and its workers carry it out after the request.

``RunLauncher.submit`` checks the request and records it in the store as a ``queued`` run carrying the
request itself, then returns; nothing runs in the request. A server's workers claim accepted runs with
one conditional update in the store (so of several servers on one store exactly one takes a run) and
carry them out with :class:`~icebridge.app.runs.RunService`, exactly as the CLI does — tables are
claimed through their leases as ever, so a table another run holds is skipped and named. A run
therefore outlives the request that asked for it and the browser that watches it.

Where the workers run is ``service.worker_mode``: ``process`` (the default) starts ``service.workers``
worker processes (:mod:`icebridge.app.worker`), each carrying out one run at a time, so a copy — Arrow,
manifests and catalog commits, all busy Python — never holds the interpreter the API answers from;
``thread`` carries runs out on threads of the server's own process. Either way the claim, the
heartbeat, cancellation and requeueing are :class:`RunExecutor`'s, the same code in both.

A run whose worker stopped without finishing it is taken up again by the next worker that looks:
recorded as running, its process gone on this machine or silent for three lease periods, it is
claimed over that owner and carried out again under the same id; its tables resume from the
destination's own history. A server that stops cleanly puts its runs back in the queue.

Cancellation is Ctrl-C's: the run's cancel event is set, the tables stop between commits and say
"interrupted". A cancellation asked of another server reaches the worker running the run through the
run's row, which every worker reads on its heartbeat.

``RunEventHub`` keeps the events of the runs this server's workers carry out while they run (a worker
process sends its events to the server over a pipe), so a live stream starts with everything the run
did so far and then follows it, progress increments included, with no gap and nothing twice.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from icebridge.app.actor import Actor, acting
from icebridge.app.runs import RunDetail, RunEvent, RunRequest, RunService
from icebridge.app.status import is_stale
from icebridge.errors import IceBridgeError, RunFinishedError
from icebridge.events import Event, EventBus, Note, Progress, RunFinished
from icebridge.leases import process_identity

if TYPE_CHECKING:
    from icebridge.context import AppContext, RunScope
    from icebridge.store import RunRow

log = logging.getLogger(__name__)

HISTORY = 20_000  # events of one run kept for late watchers (progress increments are never kept)
DETAIL_SECONDS = 0.25  # a run's detail is read from the store at most this often, however many poll it
WorkerMode = Literal["process", "thread"]
Listener = Callable[[RunEvent | None], None]  # None: the run ended


@dataclass
class _Channel:
    history: collections.deque[RunEvent] = field(default_factory=lambda: collections.deque(maxlen=HISTORY))
    listeners: list[Listener] = field(default_factory=list)


class RunEventHub:
    """The events of the runs this process carries out, kept while they run, for live streams."""

    def __init__(self, bus: EventBus) -> None:
        self._lock = threading.Lock()
        self._runs: dict[int, _Channel] = {}
        self._unsubscribe = bus.subscribe(self._on_event)

    def open(self, run_id: int) -> None:
        """Start keeping ``run_id``'s events (before the run publishes any)."""
        with self._lock:
            self._runs.setdefault(run_id, _Channel())

    def close(self, run_id: int) -> None:
        """The run is over here: tell its watchers and forget it."""
        with self._lock:
            channel = self._runs.pop(run_id, None)
        for listener in channel.listeners if channel else []:
            listener(None)

    def attach(self, run_id: int, listener: Listener) -> tuple[list[RunEvent], Callable[[], None]] | None:
        """Everything ``run_id`` published so far, and ``listener`` called with each next event (``None``
        at the end), with nothing lost or repeated in between; None when this process does not run it."""
        with self._lock:
            channel = self._runs.get(run_id)
            if channel is None:
                return None
            channel.listeners.append(listener)
            history = list(channel.history)

        def detach() -> None:
            with self._lock:
                if listener in channel.listeners:
                    channel.listeners.remove(listener)

        return history, detach

    def stop(self) -> None:
        self._unsubscribe()

    def _on_event(self, event: Event) -> None:
        if event.run_id is None:
            return
        with self._lock:
            channel = self._runs.get(event.run_id)
            if channel is None:
                return
            shown = RunEvent.from_event(event)
            if not isinstance(event, Progress):
                channel.history.append(shown)
            listeners = list(channel.listeners)
        for listener in listeners:
            listener(shown)


class Workers(Protocol):
    """Where a server's runs are carried out: threads of its own (``RunExecutor``) or worker processes."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...

    def wake(self) -> None:
        """An accepted run is waiting: look now, not at the next poll."""

    def cancel(self, run_id: int) -> None:
        """Stop ``run_id`` now if it is carried out here (the heartbeat would tell it soon anyway)."""

    def is_running(self, run_id: int) -> bool: ...


class RunLauncher:
    """Accepts runs and has its workers carry them out; any server on the store may take any run."""

    def __init__(
        self,
        app: AppContext,
        workers: int | None = None,
        poll_seconds: float | None = None,
        mode: WorkerMode | None = None,
    ) -> None:
        settings = app.config.service
        self.app = app
        self.workers = workers or settings.workers
        self.poll_seconds = poll_seconds or settings.poll_seconds
        self.mode: WorkerMode = mode or settings.worker_mode
        # the bus the runs' events arrive on: the process's own, or the one a worker process's events are
        # republished on (never the process's own: its store log would write them a second time)
        self.bus = app.bus if self.mode == "thread" else EventBus()
        self.hub = RunEventHub(self.bus)
        self._lock = threading.Lock()
        self._actors: dict[int, Actor] = {}
        self._details: dict[int, tuple[float, RunDetail]] = {}
        self._refreshing: dict[int, threading.Lock] = {}
        self._pool: Workers
        if self.mode == "thread":
            self._pool = RunExecutor(
                app,
                self.workers,
                self.poll_seconds,
                actor_for=self.take_actor,
                opened=self.hub.open,
                closed=self.hub.close,
            )
        else:
            from icebridge.app.worker import WorkerProcesses

            self._pool = WorkerProcesses(self, self.workers)

    # ------------------------------------------------------------------------------- the service

    def submit(self, request: RunRequest, actor: Actor | None = None) -> RunDetail:
        """Check ``request``, record it as a queued run started by ``actor`` and wake a worker; returns at once."""
        detail = RunService(self.app).submit(request, started_by=actor.name if actor else None)
        if actor is not None and actor.access_token:
            with self._lock:  # in memory only, for the worker of this server that takes the run
                self._actors[detail.id] = actor
        self._pool.wake()
        return detail

    def take_actor(self, run_id: int) -> Actor | None:
        """Who asked for ``run_id`` on this server, with their access token, handed once to the worker
        that claimed it (None: another server accepted it, or it was accepted before a restart)."""
        with self._lock:
            return self._actors.pop(run_id, None)

    def cancel(self, run_id: int, actor: Actor | None = None) -> RunDetail:
        """Stop a run as Ctrl-C would: a queued one never starts, a running one stops between commits."""
        runs = RunService(self.app)
        row = runs.get(run_id)
        if row.finished:
            raise RunFinishedError(f"run {run_id} has already ended ({row.status}); there is nothing to cancel")
        self.app.store.request_cancel(run_id)
        self.app.store.event(
            "cancel-requested",
            f"run {run_id}: cancellation asked by {actor.name if actor else 'an API client'}",
            run_id=run_id,
            data={"actor": actor.name if actor else None},
        )
        self._pool.cancel(run_id)
        with self._lock:
            self._details.pop(run_id, None)  # the next poll shows the cancellation
        return runs.detail(run_id)

    def cached_detail(self, run_id: int) -> RunDetail | None:
        """The run's detail if one read recently enough (or being refreshed by another request) is at hand:
        answered without touching the store, so a poll needs no worker thread."""
        now = time.monotonic()
        with self._lock:
            cached = self._details.get(run_id)
            refreshing = self._refreshing.get(run_id)
        if cached is None:
            return None
        if now - cached[0] < DETAIL_SECONDS or (refreshing is not None and refreshing.locked()):
            return cached[1]
        return None

    def detail(self, run_id: int) -> RunDetail:
        """The run with its tables, as ``RunService.detail`` reads it, at most ``DETAIL_SECONDS`` old: many
        clients polling one run cost the store one read per period, not one per poll. While one request
        reads it again, the others are answered with the previous read (a store read older)."""
        cached = self.cached_detail(run_id)
        if cached is not None:
            return cached
        with self._lock:
            refreshing = self._refreshing.setdefault(run_id, threading.Lock())
        with refreshing:
            with self._lock:
                fresh = self._details.get(run_id)
            if fresh is not None and time.monotonic() - fresh[0] < DETAIL_SECONDS:
                return fresh[1]  # another request read it while this one waited
            detail = RunService(self.app).detail(run_id)
            now = time.monotonic()
            with self._lock:
                if len(self._details) > 1000:
                    self._details = {k: v for k, v in self._details.items() if now - v[0] < DETAIL_SECONDS}
                    self._refreshing = {k: v for k, v in self._refreshing.items() if k in self._details}
                self._details[run_id] = (now, detail)
        return detail

    def is_local(self, run_id: int) -> bool:
        """Whether this server's workers are carrying out ``run_id`` now."""
        return self._pool.is_running(run_id)

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> RunLauncher:
        """Start the workers; accepted runs (and abandoned ones) are taken up at once."""
        self._pool.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking runs; the runs in progress stop between commits and go back to the queue."""
        self._pool.stop(timeout)
        self.hub.stop()


class RunExecutor:
    """Claims accepted runs and carries them out on ``workers`` threads of this process, with a heartbeat
    that keeps their rows alive and reads their cancellations (the server's threads in ``thread`` mode,
    and the inside of every worker process)."""

    def __init__(
        self,
        app: AppContext,
        workers: int,
        poll_seconds: float,
        *,
        actor_for: Callable[[int], Actor | None],
        opened: Callable[[int], None],
        closed: Callable[[int], None],
    ) -> None:
        self.app = app
        self.workers = workers
        self.poll_seconds = poll_seconds
        self.owner = process_identity()  # as a run's process is recorded: host|pid|start
        self._actor_for = actor_for
        self._opened = opened
        self._closed = closed
        self._lock = threading.Lock()
        self._scopes: dict[int, RunScope] = {}
        self._running: set[int] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the workers and the heartbeat; accepted runs (and abandoned ones) are taken up at once."""
        for n in range(self.workers):
            self._spawn(self._work, f"run-worker-{n}")
        self._spawn(self._beat, "run-heartbeat")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking runs; the runs in progress stop between commits and go back to the queue."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            scopes = list(self._scopes.values())
        for scope in scopes:
            scope.cancel.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, run_id: int) -> None:
        with self._lock:
            scope = self._scopes.get(run_id)
        if scope is not None:
            scope.cancel.set()

    def is_running(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._running

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                row = self._claim_next()
            except Exception:  # the store did not answer: try again on the next poll
                log.warning("could not look for accepted runs; trying again in %.1f s", self.poll_seconds)
                row = None
            if row is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._execute(row)

    def _beat(self) -> None:
        interval = min(self.poll_seconds, self.app.config.migrate.lease_seconds / 4)
        while not self._stopping.wait(interval):
            with self._lock:
                ids = sorted(self._running)
            if not ids:
                continue
            try:
                self.app.store.touch_runs(ids)
                cancelled = self.app.store.cancel_requested(ids)
            except Exception:
                continue  # a store hiccup: the next beat tries again; the run outlives a few misses
            for run_id in cancelled:
                self.cancel(run_id)

    def _claim_next(self) -> RunRow | None:
        store = self.app.store
        for row in store.accepted_runs():
            if self._stopping.is_set():
                return None
            if row.status == "queued":
                claimed = store.claim_run(row.id, self.owner)
            elif row.owner and row.owner != self.owner and is_stale(self.app, row):
                claimed = store.claim_run(row.id, self.owner, take_from=row.owner)
                if claimed is not None:
                    store.event(
                        "run-taken-over",
                        f"run {row.id}: taken up again by {self.owner}; its worker ({row.owner}) stopped",
                        run_id=row.id,
                        data={"from": row.owner, "to": self.owner},
                    )
            else:
                continue
            if claimed is not None:
                with self._lock:
                    self._running.add(claimed.id)
                return claimed
        return None

    def _execute(self, row: RunRow) -> None:
        self._opened(row.id)
        try:
            actor = self._actor_for(row.id)
            if row.cancel_requested_at is not None:  # cancelled while its worker was gone
                self._end(row, "interrupted", {"tables": 0, "cancelled": True})
                return
            request = RunRequest.model_validate(row.request)

            def on_start(scope: RunScope) -> None:
                with self._lock:
                    self._scopes[row.id] = scope
                if self._stopping.is_set():
                    scope.cancel.set()

            with acting(actor):
                result = RunService(self.app).run(request, on_start, run_id=row.id, started_by=row.started_by)
            if result.interrupted and self._stopping.is_set() and not self._cancel_asked(row.id):
                if self.app.store.requeue_run(row.id, self.owner):
                    self.app.bus.publish(
                        Note(
                            run_id=row.id,
                            name="run-requeued",
                            text=f"run {row.id}: back in the queue; its server stopped",
                        )
                    )
        except IceBridgeError as exc:  # found only now (a table vanished since it was accepted): on the run
            self._end(
                row,
                "failed",
                {"tables": 0, "error": self.app.config.redact(str(exc)), "error_class": type(exc).__name__},
            )
        except Exception as exc:
            message = self.app.config.redact(f"{type(exc).__name__}: {exc}")
            log.error("run %s failed: %s", row.id, message)
            self._end(row, "failed", {"tables": 0, "error": message, "error_class": type(exc).__name__})
        finally:
            with self._lock:
                self._scopes.pop(row.id, None)
                self._running.discard(row.id)
            self._closed(row.id)

    def _cancel_asked(self, run_id: int) -> bool:
        return bool(self.app.store.cancel_requested([run_id]))

    def _end(self, row: RunRow, status: str, summary: dict[str, object]) -> None:
        try:
            self.app.store.finish_run(row.id, status, dict(summary))
        except Exception:
            log.error("run %s: could not record that it %s", row.id, status)
            return
        self.app.bus.publish(RunFinished(run_id=row.id, command=row.kind, status=status, summary=dict(summary)))
