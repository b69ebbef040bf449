"""Runs: start one in the background, watch it, stream its events, cancel it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from icebridge.api.deps import MAX_ID, Caller, Ctx, Launcher, RunId
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.api.sse import run_events
from icebridge.app.runs import RunDetail, RunRequest, RunService
from icebridge.app.status import RunStatus

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)


@router.post("", status_code=202)
def start_run(request: RunRequest, launcher: Launcher, caller: Caller) -> RunDetail:
    """Accept a run of ``command`` over the tables matching ``tables``; a background worker carries it out.

    Answers 202 with the queued run at once. Bad input (a pattern matching nothing, an unknown engine,
    an unknown field) is refused here and nothing starts. The run outlives this request, and a run a
    server accepted but did not finish is taken up again when a server starts.
    """
    return launcher.submit(request, caller)


@router.get("")
def list_runs(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many of the newest runs.")] = 20,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only runs older than this one.")] = None,
) -> list[RunStatus]:
    """The newest runs first, each with its status, who started it and its summary."""
    return RunService(ctx).recent(limit=limit, before=before)


@router.get("/{run_id}")
async def get_run(run_id: RunId, launcher: Launcher) -> RunDetail:
    """One run with its tables: phase, status, rows, bytes and errors (rows and bytes so far while it runs;
    at most a quarter of a second old)."""
    cached = launcher.cached_detail(run_id)  # most polls: answered on the event loop, no store read
    if cached is not None:
        return cached
    return await run_in_threadpool(launcher.detail, run_id)


@router.post("/{run_id}/cancel", status_code=202)
def cancel_run(run_id: RunId, launcher: Launcher, caller: Caller) -> RunDetail:
    """Stop the run as Ctrl-C would: between commits, its tables saying "interrupted"; run it again to resume."""
    return launcher.cancel(run_id, caller)


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events, then `end`."}},
)
async def stream_events(run_id: RunId, request: Request, ctx: Ctx, launcher: Launcher) -> StreamingResponse:
    """The run's events as Server-Sent Events (each ``data`` a RunEvent), ending with an ``end`` event when
    the run ends: live from this server for its own runs, from the store's event log for the others."""
    await run_in_threadpool(RunService(ctx).get, run_id)  # 404 before the stream starts
    stream = run_events(ctx, launcher, run_id, ctx.config.service.poll_seconds)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
