"""Validation reports: a run's comparator results as JSON, the HTML report it wrote, and signed links that
open its report folder (the HTML report, the Data Docs site) in a browser tab of its own.

``router`` goes under ``/api/v1``; ``pages`` is the link's own prefix, ``/reports/{run}/s/{token}/``, whose
reads the authentication middleware admits without the bearer token while the link is valid for that run.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from icebridge.api.deps import Ctx, RunId
from icebridge.api.errors import ERROR_RESPONSES
from icebridge.api.middleware import links_of
from icebridge.app.reports import LINK_ROOT, ReportLink, ReportLinks, ReportService, ValidationReport
from icebridge.errors import NotFoundError
from icebridge.web import report_headers

router = APIRouter(prefix="/reports", tags=["validation reports"], responses=ERROR_RESPONSES)
pages = APIRouter(prefix=LINK_ROOT, include_in_schema=False)


def _links(request: Request) -> ReportLinks:
    return links_of(request.state)


Links = Annotated[ReportLinks, Depends(_links)]


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


@router.post("/{run_id}/links")
def report_link(run_id: RunId, ctx: Ctx, links: Links) -> ReportLink:
    """A link that opens the run's HTML report and its Data Docs in a browser tab without the bearer token,
    for 15 minutes: every file of the run's report folder is served under its prefix, so the pages' own
    links, scripts and styles resolve. Ask for a new one each time a page is opened."""
    return ReportService(ctx).link(run_id, links)


@pages.get("/{run_id}/s/{token}/{path:path}")
def report_page(
    run_id: RunId, token: Annotated[str, Path(max_length=64)], path: str, ctx: Ctx, links: Links
) -> FileResponse:
    """A file of the run's report folder, while the link's token is valid for that run."""
    if not links.valid(run_id, token):  # the middleware checked it too, unless the server runs without auth
        raise NotFoundError("this report link is wrong, for another run, or expired: open the report again")
    found, inside = ReportService(ctx).report_file(run_id, path)
    return FileResponse(found, headers=report_headers(inside))
