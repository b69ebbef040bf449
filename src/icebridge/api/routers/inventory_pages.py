"""Inventory pages: the saved inventory searched, sorted and paginated on the server (the discover page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.discover import DiscoverService, InventoryPage, InventoryPageRequest

router = APIRouter(prefix="/inventory", tags=["inventory"], responses=ERROR_RESPONSES)


@router.get("/tables")
def inventory_page(request: Annotated[InventoryPageRequest, Query()], ctx: Ctx) -> InventoryPage:
    """One page of the saved inventory: the tables matching ``q``, sorted, with their features and blockers."""
    return DiscoverService(ctx).page(request)
