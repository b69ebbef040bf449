"""Terminal progress: one bar per table with bytes and files done against the total, throughput and ETA.

A subscriber of the event bus. Bars fill from ``Progress`` increments towards the totals that
``TableStarted`` and ``PhaseStarted`` announce; a table's phase and its end are shown as they
happen, and the spinner keeps moving, so there is never a silent stretch. Shown only on a terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from icebridge.events import (
    Event,
    PhaseStarted,
    Retried,
    RunFinished,
    RunStarted,
    TableFinished,
    TableStarted,
)
from icebridge.events import Progress as ProgressEvent
from icebridge.units import human_bytes

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from icebridge.events import EventBus


class _TablesOnly(ProgressColumn):
    """A column shown for tables only: an estate-wide step (inventory, plan) counts tables, not bytes."""

    def __init__(self, inner: ProgressColumn) -> None:
        super().__init__()
        self._inner = inner

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("step"):
            return Text("")
        return self._inner.render(task)


class _Speed(ProgressColumn):
    """Throughput in the same binary units as every size IceBridge shows."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{human_bytes(speed)}/s", style="progress.data.speed")


class TerminalProgress:
    """Renders the events of runs as Rich progress bars."""

    def __init__(self, console: Console) -> None:
        self._lock = threading.Lock()
        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            _TablesOnly(BarColumn()),
            _TablesOnly(DownloadColumn(binary_units=True)),
            _TablesOnly(_Speed()),
            _TablesOnly(TimeRemainingColumn()),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            refresh_per_second=8,
        )
        self._tables: dict[str, TaskID] = {}
        self._files: dict[str, list[int]] = {}  # table -> [done, total]
        self._steps: dict[str, TaskID] = {}  # estate-wide steps (inventory, preflight)

    def __enter__(self) -> TerminalProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._show(event)

    def _show(self, event: Event) -> None:
        bars = self._bars
        table = event.table or ""
        if isinstance(event, RunStarted):
            bars.console.print(f"{event.command}: run {event.run_id} started", highlight=False)
        elif isinstance(event, TableStarted):
            self._start(table, event.phase, event.files_total, event.bytes_total)
        elif isinstance(event, PhaseStarted) and table in self._tables:
            if event.bytes_total is not None:
                self._start(table, event.phase, event.files_total or 0, event.bytes_total)
            else:
                bars.update(self._tables[table], info=event.phase)
        elif isinstance(event, ProgressEvent):
            if table in self._tables:
                done = self._files[table]
                done[0] += event.files
                bars.update(self._tables[table], advance=event.bytes, files=_files(done))
            else:
                self._step(event.phase, event.files)
        elif isinstance(event, Retried):
            bars.console.print(f"[yellow]retry[/] {event.message()}", highlight=False)
        elif isinstance(event, TableFinished) and table in self._tables:
            task_id = self._tables[table]
            bars.update(task_id, info=f"{event.status}: {event.outcome}"[:80])
            bars.stop_task(task_id)
        elif isinstance(event, RunFinished):
            for task_id in self._steps.values():
                bars.stop_task(task_id)
        if isinstance(event, TableStarted | RunFinished):  # an estate-wide step is over once tables start
            for task_id in self._steps.values():
                if not bars.tasks[task_id].finished:
                    bars.update(task_id, total=1, completed=1)
                    bars.stop_task(task_id)

    def _start(self, table: str, phase: str, files: int, size: int) -> None:
        self._files[table] = [0, files]
        fields: dict[str, Any] = {"files": _files(self._files[table]), "info": phase}
        if table in self._tables:
            self._bars.reset(self._tables[table], total=size or None, **fields)
        else:
            self._tables[table] = self._bars.add_task(table, total=size or None, **fields)

    def _step(self, phase: str, count: int) -> None:
        if phase not in self._steps:
            self._steps[phase] = self._bars.add_task(phase, total=None, files="", info="", step=True)
        task_id = self._steps[phase]
        done = int(self._bars.tasks[task_id].fields.get("count", 0)) + count
        self._bars.update(task_id, count=done, info=f"{done} table(s)")


def _files(done: list[int]) -> str:
    return f"{done[0]}/{done[1]} files" if done[1] else ""


@contextmanager
def shown(bus: EventBus, console: Console, enabled: bool) -> Iterator[None]:
    """Show progress for everything published on ``bus`` meanwhile (only on a terminal, when enabled)."""
    if not enabled or not console.is_terminal:
        yield
        return
    with TerminalProgress(console) as progress:
        unsubscribe = bus.subscribe(progress)
        try:
            yield
        finally:
            unsubscribe()
