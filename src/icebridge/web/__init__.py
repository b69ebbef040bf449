"""The web wizard: one page, its ES modules and its style sheet, served by the API's own application.

The page and its assets hold no data and are the only things answered without the bearer token; the
page asks for the token, keeps it in the tab's ``sessionStorage`` and sends it with every API call it
makes, so a visitor without it sees the prompt and nothing else. Everything it shows comes from the
same routes as any other client's (``/api/v1/...``). No build step: the files are served as written.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/ui"
# No script but the wizard's own modules, nothing from elsewhere; inline styles are allowed for the HTML
# validation report, which the page opens from the API's answer.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_dir() -> Path:
    """The folder of the page and its assets (package data)."""
    return Path(str(resources.files("icebridge.web") / "static"))


def is_public(method: str, path: str) -> bool:
    """The requests answered without the token: the page and its assets, read only."""
    return method in ("GET", "HEAD") and (path == "/" or path.startswith(ASSETS + "/"))


def mount(app: FastAPI) -> None:
    """Serve the wizard at ``/`` and its assets under ``/ui``."""
    folder = static_dir()

    @app.get("/", include_in_schema=False)
    def wizard_page() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html", headers=HEADERS)

    app.mount(ASSETS, StaticFiles(directory=folder), name="wizard-assets")
