"""Sync lag: how far each copied table is behind its source."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.lag_report import LagReport, LagReportService, LagRequest

router = APIRouter(prefix="/lag", tags=["sync"], responses=ERROR_RESPONSES)


@router.get("")
def table_lag(request: Annotated[LagRequest, Query()], ctx: Ctx) -> LagReport:
    """Snapshots and seconds each copied table is behind its source, read from the source catalogs now."""
    return LagReportService(ctx).report(request)
