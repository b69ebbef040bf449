"""The web wizard: one page, its ES modules and its style sheet, served by the API's own application.

The page and its assets hold no data and are the only things answered without the bearer token; the
page asks for the token, keeps it in the tab's ``sessionStorage`` and sends it with every API call it
makes, so a visitor without it sees the prompt and nothing else. Everything it shows comes from the
same routes as any other client's (``/api/v1/...``). No build step: the files are served as written.

A run's HTML report and its Great Expectations Data Docs open in a tab of their own from a short-lived
signed link (``/reports/{run}/s/{token}/…``, see :class:`icebridge.app.reports.ReportLinks`), served with
:func:`report_headers`: a policy for what those pages load, no referrer (the token is in the path), no cache.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/ui"
# No script but the wizard's own modules, no style but its sheet, nothing from elsewhere.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The HTML validation report is one self-contained page: its own <style>, nothing else.
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# What the pages Great Expectations generates load: their inline scripts and styles, their own files, and
# jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from these CDNs (and a logo from GX's bucket).
# Without access to them a browser shows the pages' static parts only: the index's tables are built by
# bootstrap-table.
DATA_DOCS_CDNS = (
    "https://cdn.jsdelivr.net",
    "https://cdnjs.cloudflare.com",
    "https://code.jquery.com",
    "https://maxcdn.bootstrapcdn.com",
    "https://stackpath.bootstrapcdn.com",
    "https://unpkg.com",
)
DATA_DOCS_IMAGES = ("https://great-expectations-web-assets.s3.us-east-2.amazonaws.com",)
_CDNS = " ".join(DATA_DOCS_CDNS)
DATA_DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {_CDNS}; style-src 'self' 'unsafe-inline' {_CDNS}; "
    f"font-src 'self' data: {_CDNS}; img-src 'self' data: {' '.join(DATA_DOCS_IMAGES)}; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def report_headers(path: str) -> dict[str, str]:
    """The headers of a file opened from a signed report link: ``path`` inside the run's report folder."""
    from icebridge.validation.gx import SITE_FOLDER

    policy = DATA_DOCS_POLICY if path.startswith(SITE_FOLDER + "/") else REPORT_POLICY
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def static_dir() -> Path:
    """The folder of the page and its assets (package data)."""
    return Path(str(resources.files("icebridge.web") / "static"))


def is_public(method: str, path: str) -> bool:
    """The requests answered without the token: the page and its assets, read only. (The middleware also
    admits reads under a report link while its signature holds: that needs the server's key.)"""
    return method in ("GET", "HEAD") and (path == "/" or path.startswith(ASSETS + "/"))


def mount(app: FastAPI) -> None:
    """Serve the wizard at ``/`` and its assets under ``/ui``."""
    folder = static_dir()

    @app.get("/", include_in_schema=False)
    def wizard_page() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html", headers=HEADERS)

    app.mount(ASSETS, StaticFiles(directory=folder), name="wizard-assets")
