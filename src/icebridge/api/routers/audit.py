"""Audit: the event log per table or run, with actor, time, and state before and after."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.audit import AuditLog, AuditRequest, AuditService

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("")
def audit_log(request: Annotated[AuditRequest, Query()], ctx: Ctx) -> AuditLog:
    """Entries of the event log, oldest first, for one run, one table or all: who, when, what, before and after."""
    return AuditService(ctx).entries(request)
