"""Prometheus metrics, fed by the event bus: what was copied and validated, how long phases took,
retries, commit conflicts and errors, tasks by phase and status, and each copied table's sync lag.

A :class:`Metrics` subscribes to a process's bus and keeps its own registry (several contexts in one
process never mix). ``icebridge serve`` serves it at ``/metrics``; a CLI command pushes it to a
Pushgateway at its end when ``ICEBRIDGE_PUSHGATEWAY`` is set (:func:`push_at_exit`). Tasks by phase
and status are read from the store on each scrape (one grouped query); the sync lag is computed on a
timer from the store and the source catalogs, a bounded number of tables per round.

Counters only grow within one process: Prometheus's ``rate()`` and ``increase()`` read them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from icebridge import errors
from icebridge.events import (
    BatchCommitted,
    Event,
    PhaseStarted,
    Retried,
    RunFinished,
    TableFinished,
    TableStarted,
    Validated,
)

if TYPE_CHECKING:
    from icebridge.app.lag import TableLag
    from icebridge.context import AppContext
    from icebridge.events import EventBus
    from icebridge.store import Store

log = logging.getLogger(__name__)

PUSHGATEWAY_ENV = "ICEBRIDGE_PUSHGATEWAY"
PHASE_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
_CONFLICTS = ("CommitFailedException",)  # PyIceberg's own class for a lost commit race


class Metrics:
    """The collectors of one process, updated from its bus."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.copied_bytes = Counter("icebridge_copied_bytes", "Source bytes committed to destinations.", registry=r)
        self.copied_files = Counter("icebridge_copied_files", "Source files committed to destinations.", registry=r)
        self.copied_rows = Counter("icebridge_copied_rows", "Rows committed to destinations.", registry=r)
        self.batches = Counter("icebridge_batches_committed", "Destination commits (batches).", registry=r)
        self.validated_rows = Counter(
            "icebridge_validated_rows", "Rows of tables whose validation ended, by verdict.", ["result"], registry=r
        )
        self.comparisons = Counter(
            "icebridge_validations", "Comparator results.", ["level", "comparator", "result"], registry=r
        )
        self.phase_seconds = Histogram(
            "icebridge_phase_duration_seconds",
            "Time a table spent in a phase.",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.retries = Counter("icebridge_retries", "Transient errors retried, by class.", ["error_class"], registry=r)
        self.conflicts = Counter("icebridge_commit_conflicts", "Destination commits that lost a race.", registry=r)
        self.errors = Counter("icebridge_errors", "Tables that failed, by error class.", ["error_class"], registry=r)
        self.tables_finished = Counter(
            "icebridge_tables_finished", "Tables whose work in a run ended, by status.", ["status"], registry=r
        )
        self.runs = Counter(
            "icebridge_runs_finished", "Runs that ended, by command and status.", ["command", "status"], registry=r
        )
        self.lag_seconds = Gauge(
            "icebridge_sync_lag_seconds",
            "How long the oldest uncopied source snapshot has waited.",
            ["table"],
            registry=r,
        )
        self.lag_snapshots = Gauge(
            "icebridge_sync_lag_snapshots", "Source snapshots after the one copied.", ["table"], registry=r
        )
        self._lock = threading.Lock()
        self._phase: dict[tuple[int | None, int | None, str | None], tuple[str, datetime]] = {}
        self._verdicts: dict[tuple[int | None, int | None], bool] = {}
        self._lagging: set[str] = set()

    # ------------------------------------------------------------------------------------ feeding

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Count ``bus``'s events from now on; returns the unsubscribe function."""
        return bus.subscribe(self.handle)

    def watch_tasks(self, store: Store) -> None:
        """Report tasks by phase and status, read from ``store`` at each scrape."""
        self.registry.register(_TaskCollector(store))

    def handle(self, event: Event) -> None:
        """Update the collectors from one event."""
        if isinstance(event, BatchCommitted):
            self.copied_bytes.inc(event.bytes)
            self.copied_files.inc(event.files)
            self.copied_rows.inc(event.rows)
            self.batches.inc()
        elif isinstance(event, Retried):
            self.retries.labels(event.error_class or "unknown").inc()
            if _is_conflict(event.error_class):
                self.conflicts.inc()
        elif isinstance(event, Validated):
            result = "passed" if event.passed else "failed"
            self.comparisons.labels(str(event.level), event.comparator, result).inc()
            with self._lock:
                key = (event.run_id, event.task_id)
                self._verdicts[key] = self._verdicts.get(key, True) and event.passed
        elif isinstance(event, TableStarted | PhaseStarted):
            self._enter(event, event.phase)
        elif isinstance(event, TableFinished):
            self._enter(event, None)
            self.tables_finished.labels(event.status).inc()
            if event.error_class:
                self.errors.labels(event.error_class).inc()
            with self._lock:
                verdict = self._verdicts.pop((event.run_id, event.task_id), None)
            if verdict is not None:
                self.validated_rows.labels("passed" if verdict else "failed").inc(event.rows)
        elif isinstance(event, RunFinished):
            self.runs.labels(event.command, event.status).inc()

    def _enter(self, event: Event, phase: str | None) -> None:
        """A table moved to ``phase`` (None: its work ended): the time in the phase it left is observed."""
        key = (event.run_id, event.task_id, event.table)
        with self._lock:
            left = self._phase.pop(key, None)
            if phase:
                self._phase[key] = (phase, event.at)
        if left is not None and left[0] != "planned":
            self.phase_seconds.labels(left[0]).observe(max(0.0, (event.at - left[1]).total_seconds()))

    def set_lag(self, lags: list[TableLag]) -> None:
        """Set the sync-lag gauges of these tables (a table whose lag could not be read is left out)."""
        for lag in lags:
            if lag.snapshots_behind is None or lag.seconds_behind is None:
                self._drop_lag(lag.source)
                continue
            self.lag_seconds.labels(lag.source).set(lag.seconds_behind)
            self.lag_snapshots.labels(lag.source).set(lag.snapshots_behind)
            self._lagging.add(lag.source)

    def keep_lag_of(self, sources: set[str]) -> None:
        """Forget the lag of tables that are no longer copied and live (cut over, removed)."""
        for source in self._lagging - sources:
            self._drop_lag(source)

    def _drop_lag(self, source: str) -> None:
        if source in self._lagging:
            self.lag_seconds.remove(source)
            self.lag_snapshots.remove(source)
            self._lagging.discard(source)

    # ------------------------------------------------------------------------------------ reading

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def push(self, gateway: str, command: str, timeout: float = 5.0) -> None:
        """Push every metric to a Pushgateway, grouped by job ``icebridge``, command and host."""
        from prometheus_client import push_to_gateway

        push_to_gateway(
            gateway,
            job="icebridge",
            registry=self.registry,
            grouping_key={"command": command, "instance": socket.gethostname()},
            timeout=timeout,
        )


def _is_conflict(error_class: str) -> bool:
    cls = getattr(errors, error_class, None)
    return error_class in _CONFLICTS or (isinstance(cls, type) and issubclass(cls, errors.CommitConflictError))


class _TaskCollector:
    """``icebridge_tasks{phase,status}``: read from the store when scraped."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> list[Any]:
        return []  # so registering does not query the store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "icebridge_tasks", "Tasks (one per source table) by phase and status.", labels=["phase", "status"]
        )
        try:
            counts = self._store.task_counts()
        except Exception:  # a scrape during a store hiccup shows no task gauge rather than failing the others
            log.warning("tasks by phase and status could not be read from the state store")
            counts = {}
        for (phase, status), n in sorted(counts.items()):
            family.add_metric([phase, status], n)
        yield family


class LagWatch:
    """Recomputes the sync-lag gauges every ``interval`` seconds, ``limit`` tables a round, round robin."""

    def __init__(self, app: AppContext, metrics: Metrics, interval: float, limit: int) -> None:
        self.app = app
        self.metrics = metrics
        self.interval = interval
        self.limit = limit
        self._offset = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LagWatch:
        self._thread = threading.Thread(target=self._loop, name="sync-lag", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def refresh(self) -> list[TableLag]:
        """One round: the next ``limit`` copied tables' lag into the gauges."""
        from icebridge.app.lag import LagService

        service = LagService(self.app)
        candidates = service.candidates()
        self.metrics.keep_lag_of({t.source for t in candidates})
        if not candidates:
            return []
        start = self._offset % len(candidates)
        chosen = (candidates[start:] + candidates[:start])[: self.limit]
        self._offset = start + len(chosen)
        lags = service.lag(chosen)
        self.metrics.set_lag(lags)
        return lags

    def _loop(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:
                log.warning("the sync lag could not be computed this round; trying again in %.0f s", self.interval)
            if self._stop.wait(self.interval):
                return


def push_at_exit(app: AppContext, command: str) -> Callable[[], None] | None:
    """When ``$ICEBRIDGE_PUSHGATEWAY`` is set: count this command's events, and return the function that
    pushes them (one warning line on failure, never an error). None when it is not set."""
    gateway = os.environ.get(PUSHGATEWAY_ENV)
    if not gateway:
        return None
    try:
        metrics = Metrics()
    except ImportError:
        _warn(f"{PUSHGATEWAY_ENV} is set but prometheus-client is not installed: pip install 'icebridge[service]'")
        return None
    unsubscribe = metrics.subscribe(app.bus)

    def push() -> None:
        unsubscribe()
        try:
            if app.store_open:
                metrics.watch_tasks(app.store)
            metrics.push(gateway, command)
        except Exception as exc:
            reason = app.config.redact(_first_line(exc))
            _warn(f"metrics not pushed to the Pushgateway at {app.config.redact(gateway)}: {reason}")

    return push


def _warn(text: str) -> None:
    import sys

    print(f"warning: {text}", file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
