"""What a route is handed: the process's context, its run launcher, and who is calling.

Each is ``async``: it only reads the application's state, and a sync dependency would cost every
request a hop through the worker thread pool (FastAPI runs sync dependencies there)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from icebridge.api.middleware import actor_of
from icebridge.app.actor import Actor
from icebridge.app.launcher import RunLauncher
from icebridge.context import AppContext
from icebridge.metrics import Metrics

MAX_ID = 2**31 - 1  # ids are 32-bit integers in every store


async def _context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def _launcher(request: Request) -> RunLauncher:
    return request.app.state.launcher  # type: ignore[no-any-return]


async def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def _actor(request: Request) -> Actor:
    return actor_of(request.state)


Ctx = Annotated[AppContext, Depends(_context)]
Launcher = Annotated[RunLauncher, Depends(_launcher)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
Caller = Annotated[Actor, Depends(_actor)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id.")]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id.")]
