"""Pre-flight: every check a table must pass before it is copied."""

from __future__ import annotations

from fastapi import APIRouter

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.preflight import PreflightRequest, PreflightResult, PreflightService

router = APIRouter(prefix="/preflight", tags=["preflight"], responses=ERROR_RESPONSES)


@router.post("")
def run_preflight(request: PreflightRequest, ctx: Ctx) -> PreflightResult:
    """Check the chosen tables: source readable, namespace creatable, storage writable, features carried."""
    return PreflightService(ctx).preflight(request)
