"""Plans: the dry run — destination, strategy, reason, size and estimate per table."""

from __future__ import annotations

from fastapi import APIRouter

from icebridge.api.deps import Ctx
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.plans import PlanRequest, PlanResult, PlanService, ScriptsResult

router = APIRouter(prefix="/plans", tags=["plans"], responses=ERROR_RESPONSES)


@router.post("")
def make_plan(request: PlanRequest, ctx: Ctx) -> PlanResult:
    """Plan, save and estimate the chosen tables; writes nothing to any catalog or storage."""
    return PlanService(ctx).plan(request)


@router.post("/scripts")
def plan_scripts(request: PlanRequest, ctx: Ctx) -> ScriptsResult:
    """The Spark SQL script that migrates each planned table, for review."""
    return PlanService(ctx).scripts(request)
