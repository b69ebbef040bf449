"""Tasks: one per source table, kept across runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from icebridge.api.deps import Ctx, TaskId
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.cutover_preview import CutoverPreview, CutoverPreviewRequest, CutoverPreviewService
from icebridge.app.status import StatusService, TableStatus

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


@router.get("")
def list_tasks(
    ctx: Ctx,
    tables: Annotated[
        str | None, Query(max_length=1024, description="Only tables matching this glob (catalog.ns.table or ns.table).")
    ] = None,
) -> list[TableStatus]:
    """Every table's task: phase, status, rows, bytes, work time, error, and which run holds it."""
    return StatusService(ctx).tables(tables)


@router.get("/{task_id}")
def get_task(task_id: TaskId, ctx: Ctx) -> TableStatus:
    """One table's task."""
    return StatusService(ctx).table(task_id)


@router.post("/cutover-preview")
def cutover_preview(request: CutoverPreviewRequest, ctx: Ctx) -> CutoverPreview:
    """What a cut-over or a roll back of these tables would change, each governance adapter's steps
    included, read now. Nothing is changed."""
    return CutoverPreviewService(ctx).preview(request)
