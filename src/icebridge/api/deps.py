"""What a route is handed: the process's context, its run launcher, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from icebridge.api.middleware import actor_of
from icebridge.app.actor import Actor
from icebridge.app.launcher import RunLauncher
from icebridge.context import AppContext
from icebridge.metrics import Metrics

MAX_ID = 2**31 - 1  # ids are 32-bit integers in every store


def _context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def _launcher(request: Request) -> RunLauncher:
    return request.app.state.launcher  # type: ignore[no-any-return]


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def _actor(request: Request) -> Actor:
    return actor_of(request.state)


Ctx = Annotated[AppContext, Depends(_context)]
Launcher = Annotated[RunLauncher, Depends(_launcher)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
Caller = Annotated[Actor, Depends(_actor)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The run's id.")]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID, description="The task's id.")]
