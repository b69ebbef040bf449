"""Storage: check the managed location a destination catalog writes new tables to."""

from __future__ import annotations

from fastapi import APIRouter

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.storage_check import StorageCheck, StorageCheckRequest, StorageCheckService

router = APIRouter(prefix="/storage", tags=["storage"], responses=ERROR_RESPONSES)


@router.post("/check")
def check_storage(request: StorageCheckRequest, ctx: Ctx) -> StorageCheck:
    """Write, read back and delete a small probe where the catalog would put new tables (as pre-flight does)."""
    return StorageCheckService(ctx).check(request)
