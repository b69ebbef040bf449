"""The FastAPI application: routers under ``/api/v1``, ``/metrics``, OpenAPI and its docs, all behind auth.

``create_app`` wires one process's :class:`~icebridge.context.AppContext` to the routers, the run
launcher (background workers), the Prometheus metrics and the middleware; its lifespan starts the
workers and the sync-lag timer and stops them (runs in progress go back to the queue).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from starlette.middleware.cors import CORSMiddleware

from icebridge import __version__
from icebridge.api import errors
from icebridge.api.deps import MetricsDep
from icebridge.api.middleware import BearerAuth, BodyLimit
from icebridge.api.routers import (
    audit,
    catalogs,
    inventory,
    inventory_pages,
    lag,
    mappings,
    plans,
    preflight,
    reports,
    runs,
    storage,
    tasks,
)
from icebridge.app.launcher import RunLauncher
from icebridge.context import AppContext
from icebridge.metrics import LagWatch, Metrics
from icebridge.web import is_public
from icebridge.web import mount as mount_wizard

API_PREFIX = "/api/v1"


def create_app(ctx: AppContext, token: str | None, *, workers: bool = True) -> FastAPI:
    """The service over ``ctx``. ``token``: the bearer token every request needs (None: no auth, which
    ``serve`` allows on a loopback address only). ``workers=False`` accepts runs without carrying them
    out in this process (another server on the same store does)."""
    settings = ctx.config.service
    metrics = Metrics()
    launcher = RunLauncher(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        unsubscribe = metrics.subscribe(ctx.bus)
        # a worker process's events arrive on the launcher's bus (in thread mode that is ctx.bus itself)
        unsubscribe_runs = metrics.subscribe(launcher.bus) if launcher.bus is not ctx.bus else (lambda: None)
        metrics.watch_tasks(ctx.store)
        lag = LagWatch(ctx, metrics, settings.lag_interval_seconds, settings.lag_max_tables).start()
        if workers:
            launcher.start()
        try:
            yield
        finally:
            launcher.stop()
            lag.stop()
            unsubscribe()
            unsubscribe_runs()

    app = FastAPI(
        title="IceBridge",
        version=__version__,
        summary="Migrate foreign Apache Iceberg tables into managed Iceberg tables.",
        description=(
            "Every call needs `Authorization: Bearer <token>`. Runs are carried out by background workers: "
            "`POST /api/v1/runs` answers 202 with the queued run; follow it with `GET /api/v1/runs/{id}` or "
            "its Server-Sent Events at `/api/v1/runs/{id}/events`."
        ),
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.launcher = launcher
    app.state.metrics = metrics
    errors.install(app, ctx.config)
    for router in (
        catalogs.router,
        storage.router,
        inventory_pages.router,
        inventory.router,
        mappings.router,
        lag.router,
        preflight.router,
        plans.router,
        runs.router,
        tasks.router,
        reports.router,
        audit.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(reports.pages)  # signed report links: /reports/{run}/s/{token}/…
    mount_wizard(app)

    @app.get("/metrics", tags=["metrics"], response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus_metrics(metrics: MetricsDep) -> Response:
        """Prometheus metrics in the text exposition format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    # added innermost first: the body limit, then auth, then CORS outermost (a preflight carries no token)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(BearerAuth, token=token, public=is_public)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app
