"""Inventory: the facts of every source table."""

from __future__ import annotations

from fastapi import APIRouter

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.inventory import InventoryRequest, InventoryResult, InventoryService

router = APIRouter(prefix="/inventory", tags=["inventory"], responses=ERROR_RESPONSES)


@router.get("")
def saved_inventory(ctx: Ctx) -> InventoryResult:
    """The saved inventory (read from the source catalogs first when none is saved)."""
    return InventoryService(ctx).inventory(InventoryRequest())


@router.post("")
def take_inventory(request: InventoryRequest, ctx: Ctx) -> InventoryResult:
    """Read the inventory (``refresh``: from the source catalogs again); sources are only read."""
    return InventoryService(ctx).inventory(request)
