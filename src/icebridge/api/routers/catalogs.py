"""Catalogs: the configured ones, and a connection test."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.catalogs import CatalogCheck, CatalogList, CatalogService

router = APIRouter(prefix="/catalogs", tags=["catalogs"], responses=ERROR_RESPONSES)


@router.get("")
def list_catalogs(ctx: Ctx) -> CatalogList:
    """Every configured catalog with its roles and properties; secrets and passwords in URLs are hidden."""
    return CatalogService(ctx).list()


@router.post("/{name}/test")
def test_catalog(
    name: Annotated[str, Path(max_length=255, description="The catalog's name.")], ctx: Ctx
) -> CatalogCheck:
    """Load the catalog and make one round trip; says whether it answered, how fast, and why not."""
    return CatalogService(ctx).test(name)
