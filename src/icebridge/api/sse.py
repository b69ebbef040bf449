"""A run's events as Server-Sent Events, until the run ends.

A run this server's workers carry out is followed live through the launcher's hub (its history first,
then each event as it is published, progress increments included) — also a run still queued when the
stream opened, once a worker here claims it; any other run — carried out by another server, or
finished — is read from the store's event log, polled until the run ends, as is a run whose worker
stopped before it ended (whoever takes it up writes the log). Either way the stream closes with an
``end`` event carrying the run's final status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from icebridge.app.runs import RunEvent, RunService

if TYPE_CHECKING:
    from icebridge.app.launcher import RunLauncher
    from icebridge.context import AppContext

KEEPALIVE_SECONDS = 15.0
PAGE = 500
QUEUED_MAX = 10_000  # a reader this far behind loses progress increments, never other events


def _frame(event: RunEvent) -> str:
    head = f"id: {event.id}\n" if event.id is not None else ""
    return f"{head}event: {event.kind}\ndata: {event.model_dump_json()}\n\n"


async def run_events(ctx: AppContext, launcher: RunLauncher | None, run_id: int, poll: float) -> AsyncIterator[str]:
    """The SSE frames of run ``run_id`` (which the caller checked exists), ending when the run ends."""
    runs = RunService(ctx)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()

    def offer(event: RunEvent | None) -> None:
        if event is None or event.kind != "progress" or queue.qsize() < QUEUED_MAX:
            queue.put_nowait(event)

    def listener(event: RunEvent | None) -> None:
        try:
            loop.call_soon_threadsafe(offer, event)
        except RuntimeError:  # the stream's loop is gone: the client left
            pass

    def attach() -> tuple[list[RunEvent], Callable[[], None]] | None:
        return launcher.hub.attach(run_id, listener) if launcher is not None else None

    last, quiet, live = 0, 0.0, True
    while True:
        # live, while this server's workers carry the run out (also once a queued run is claimed here:
        # nothing was read from the log yet, so the hub's history is the whole story)
        attached = attach() if live and last == 0 else None
        if attached is not None:
            history, detach = attached
            try:
                if history:  # one write, rendered off the event loop: a long run's history is thousands of events
                    yield await run_in_threadpool(_frames, history)
                while True:
                    try:
                        next_event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if next_event is None:
                        break
                    yield _frame(next_event)
            finally:
                detach()
            row = await run_in_threadpool(runs.get, run_id)
            if row.finished:
                break
            # stopped here unfinished (its worker stopped): follow the log from what is in it now, as
            # whoever takes the run up again writes it (everything seen live was logged before it came)
            last, live = await run_in_threadpool(_last_event, runs, run_id), False
            continue
        row = await run_in_threadpool(runs.get, run_id)  # read before the events, so none is missed at the end
        events = await run_in_threadpool(runs.events, run_id, last, PAGE)
        if events:
            last = next((e.id for e in reversed(events) if e.id is not None), last)
            yield await run_in_threadpool(_frames, events)
        if len(events) == PAGE:
            continue
        if row.finished:
            break
        quiet = 0.0 if events else quiet + poll
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)
    final = await run_in_threadpool(runs.get, run_id)
    yield f"event: end\ndata: {json.dumps({'run_id': run_id, 'status': final.status})}\n\n"


def _frames(events: list[RunEvent]) -> str:
    return "".join(_frame(event) for event in events)


def _last_event(runs: RunService, run_id: int) -> int:
    """The id of the newest event the store's log holds of ``run_id`` (0: none)."""
    last = 0
    while events := runs.events(run_id, last, PAGE):
        last = events[-1].id or last
        if len(events) < PAGE:
            break
    return last
