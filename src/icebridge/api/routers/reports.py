"""Validation reports: a run's comparator results as JSON, and the HTML report it wrote."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from icebridge.api.deps import Ctx, RunId
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.app.reports import ReportService, ValidationReport

router = APIRouter(prefix="/reports", tags=["validation reports"], responses=ERROR_RESPONSES)


@router.get("/{run_id}")
def validation_report(run_id: RunId, ctx: Ctx) -> ValidationReport:
    """Every table the run validated, level by level: comparator, verdict, what it proved, its details."""
    return ReportService(ctx).validation(run_id)


@router.get("/{run_id}/html", response_class=HTMLResponse, responses={200: {"content": {"text/html": {}}}})
def html_report(run_id: RunId, ctx: Ctx) -> HTMLResponse:
    """The self-contained HTML validation report the run wrote."""
    return HTMLResponse(ReportService(ctx).html(run_id))


@router.get(
    "/{run_id}/data-docs/{page:path}", response_class=FileResponse, responses={200: {"content": {"text/html": {}}}}
)
def data_docs(run_id: RunId, page: str, ctx: Ctx) -> FileResponse:
    """A file of the Great Expectations Data Docs the run wrote (``index.html`` when ``page`` is empty);
    nothing outside that run's Data Docs folder is served."""
    return FileResponse(ReportService(ctx).data_docs(run_id, page))
