"""Mapping rules: the ones in force, a preview of edited ones, and saving them into the configuration file."""

from __future__ import annotations

from fastapi import APIRouter

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.mappings import MappingRules, MappingService, PreviewRequest, PreviewResult, SaveRequest

router = APIRouter(prefix="/mappings", tags=["mappings"], responses=ERROR_RESPONSES)


@router.get("")
def mapping_rules(ctx: Ctx) -> MappingRules:
    """The mapping rules in force (first match wins) and the configuration file's version to save against."""
    return MappingService(ctx).rules()


@router.post("/preview")
def preview_rules(request: PreviewRequest, ctx: Ctx) -> PreviewResult:
    """Every inventoried table under the edited rules: destination, strategy, collisions and blockers.
    Nothing is saved or written."""
    return MappingService(ctx).preview(request)


@router.put("")
def save_rules(request: SaveRequest, ctx: Ctx) -> MappingRules:
    """Save the rules as the configuration file's ``mappings:`` (the rest of the file is kept as written),
    if the file is still at ``version``; the CLI and this server use them from then on."""
    return MappingService(ctx).save(request)
