"""Validation reports: the HTML report of a run (and Great Expectations Data Docs when asked for), and the
short-lived signed links that open a run's report folder in a browser tab of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import NotFoundError, ReportWriteError
from icebridge.events import Note
from icebridge.model import Status

if TYPE_CHECKING:
    from icebridge.context import AppContext, RunScope
    from icebridge.runner import RunReport
    from icebridge.store import RunRow

NOTHING_CHECKED = ("already done", "already cut over")
LINK_SECONDS = 15 * 60  # how long a signed report link opens its run's reports
LINK_ROOT = "/reports"  # /reports/{run_id}/s/{token}/{file in the run's report folder}
_LINK_LABEL = b"icebridge report links v1"
# A link's path, percent-decoded as the server sees it: the run, the token (expiry, a dot, the signature),
# and the file inside that run's report folder.
LINK_PATH = re.compile(r"^/reports/([1-9][0-9]{0,9})/s/([0-9]{1,12}\.[A-Za-z0-9_-]{43})(/.*)?$")


def write_reports(scope: RunScope, report: RunReport) -> None:
    """Write the run's HTML validation report, and the Data Docs when the configuration asks for them.

    Raises ReportWriteError naming the folder when it cannot be written; the run itself is recorded
    by the caller either way.
    """
    from icebridge.validation.report import TableValidation, write_html_report

    store = scope.store
    tasks = {t.source: t for t in store.list_tasks()}
    tables = []
    for outcome in report.outcomes:
        task = tasks.get(outcome.source)
        rows = store.validations(task.id, report.run_id) if task else []
        if not rows and (outcome.message in NOTHING_CHECKED or outcome.status == Status.SKIPPED):
            continue  # nothing was checked in this run
        error = outcome.message if outcome.status == Status.FAILED and not rows else None
        strategy = task.strategy if task else ""
        tables.append(TableValidation.from_rows(outcome.source, outcome.destination, rows, strategy, error))
    if not tables:
        return
    folder = scope.config.reports_dir / f"run-{report.run_id}"
    run_info: dict[str, Any] = {
        "run": report.run_id,
        "command": report.kind,
        "status": report.status,
        "configuration": str(scope.config.path),
        **{k: v for k, v in report.summary().items() if k != "interrupted"},
    }
    try:
        path = write_html_report(folder / "report.html", run_info, tables)
    except OSError as exc:
        raise ReportWriteError(
            f"the run's report cannot be written to {folder}: {exc.strerror or exc}; "
            "set 'reports.folder' in the configuration to a folder IceBridge can write"
        ) from exc
    report.report_path = str(path)
    store.set_run_report(report.run_id, str(path))
    if not scope.config.data_docs:
        return
    from icebridge.validation import gx

    try:
        docs = gx.write_data_docs(folder, tables)
    except Exception as exc:  # the IceBridge report stands; Data Docs are a second rendering of it
        scope.publish(Note(name="data-docs-failed", text=f"Great Expectations Data Docs not written: {exc}"))
        return
    report.data_docs_path = str(docs) if docs else None


class LevelOutcome(BaseModel):
    """One comparator's stored result: what it compared, whether it passed, and what it proved."""

    model_config = ConfigDict(frozen=True)

    level: int
    level_name: str
    comparator: str
    passed: bool
    summary: str
    proves: str
    details: dict[str, Any]


class TableReport(BaseModel):
    """One table's validation in a run."""

    model_config = ConfigDict(frozen=True)

    source: str
    destination: str
    strategy: str
    verdict: str = Field(description="passed, failed, or not validated.")
    levels: list[LevelOutcome]


class ValidationReport(BaseModel):
    """A run's validation: every table it checked, level by level, as the store recorded it."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    kind: str
    status: str
    html: bool = Field(description="Whether the run wrote its HTML report.")
    data_docs: list[str] = Field(
        default_factory=list,
        description="The HTML pages of the Great Expectations Data Docs the run wrote (index.html first), "
        "each served at /api/v1/reports/{run_id}/data-docs/{page} (and under a link from POST "
        "/api/v1/reports/{run_id}/links); none when it wrote none.",
    )
    tables: list[TableReport]


class ReportLinks:
    """Signs and checks the links that open one run's report folder without the bearer token.

    A token is ``<expiry>.<signature>``: the Unix second it stops working and an HMAC-SHA256 over the run
    id and that second. The key is derived from the API token (so every server with that token accepts the
    links of the others, and the API token itself is never sent or derivable), or random for this process
    when the server runs without auth. ``clock`` and ``seconds`` are there for tests."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time, seconds: int = LINK_SECONDS) -> None:
        if len(key) < 16:
            raise ValueError("a report link key needs at least 16 bytes")
        self._key = key
        self._clock = clock
        self.seconds = seconds

    @classmethod
    def for_token(
        cls, api_token: str | None, *, clock: Callable[[], float] = time.time, seconds: int = LINK_SECONDS
    ) -> ReportLinks:
        """The links of a server whose bearer token is ``api_token`` (None: a random key for this process)."""
        key = (
            hmac.new(api_token.encode(), _LINK_LABEL, hashlib.sha256).digest() if api_token else secrets.token_bytes(32)
        )
        return cls(key, clock=clock, seconds=seconds)

    def sign(self, run_id: int) -> tuple[str, datetime]:
        """A token for ``run_id`` and when it expires."""
        expires = int(self._clock()) + self.seconds
        return f"{expires}.{self._mac(run_id, expires)}", datetime.fromtimestamp(expires, UTC)

    def valid(self, run_id: int, token: str) -> bool:
        """Whether ``token`` was signed for ``run_id`` by this key and has not expired."""
        expiry, dot, mac = token.partition(".")
        if not dot or not expiry.isdigit() or len(expiry) > 12 or int(expiry) < self._clock():
            return False
        return hmac.compare_digest(mac.encode(), self._mac(run_id, int(expiry)).encode())

    def admits(self, method: str, path: str) -> bool:
        """Whether a request is a read under a valid link's prefix (answered without the bearer token)."""
        found = LINK_PATH.match(path) if method in ("GET", "HEAD") else None
        return found is not None and self.valid(int(found.group(1)), found.group(2))

    def _mac(self, run_id: int, expires: int) -> str:
        digest = hmac.new(self._key, f"report:{run_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ReportLink(BaseModel):
    """Where a run's reports open in a browser tab of their own, until the link expires."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    expires_at: datetime = Field(description="When the link stops working (UTC); ask for a new one then.")
    base: str = Field(description="The link's prefix: every file of the run's report folder is under it.")
    html: str = Field(description="The run's HTML validation report.")
    data_docs: str | None = Field(
        description="The Great Expectations Data Docs index, or None when the run wrote none; the site's "
        "pages, scripts and styles resolve from it as they do on disk."
    )


def _no_report(run_id: int, purpose: str = "") -> NotFoundError:
    """The answer for a run that wrote no HTML report."""
    asked = f"no HTML report {purpose}".rstrip()
    return NotFoundError(
        f"run {run_id} has {asked}: only migrate, validate and cutover runs that validated a table write one"
    )


class ReportService:
    """Serves what runs validated: the stored comparator results, and the HTML report a run wrote."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def link(self, run_id: int, links: ReportLinks) -> ReportLink:
        """A signed link to the run's report folder (NotFoundError for an unknown run or one that wrote no
        report)."""
        run = self._run(run_id)
        report = self._own_folder(run.report_path)
        if report is None:
            raise _no_report(run_id, "to open")
        token, expires = links.sign(run_id)
        base = f"{LINK_ROOT}/{run_id}/s/{token}/"
        site = self._site(run.report_path)
        docs = f"{base}{site.relative_to(report.parent).as_posix()}/index.html" if site else None
        return ReportLink(run_id=run_id, expires_at=expires, base=base, html=base + report.name, data_docs=docs)

    def report_file(self, run_id: int, path: str) -> tuple[Path, str]:
        """A file of the run's report folder (its HTML report, its Data Docs site) for a signed link, and where
        it is inside that folder (``gx/index.html``); a path that leaves the folder, by ``..``, an absolute
        path or a link to elsewhere, is NotFoundError like a missing file."""
        run = self._run(run_id)
        report = self._own_folder(run.report_path)
        if report is None:
            raise NotFoundError(f"run {run_id} wrote no report")
        folder = report.parent
        if not path or path.startswith("/") or "\\" in path or "\x00" in path:
            raise NotFoundError(f"run {run_id}'s report folder has no file {path!r}")
        target = (folder / path).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            raise NotFoundError(f"run {run_id}'s report folder has no file {path!r}")
        return target, target.relative_to(folder).as_posix()

    def validation(self, run_id: int) -> ValidationReport:
        """The run's comparator results per table (NotFoundError for an unknown run)."""
        from icebridge.validation.report import TableValidation

        store = self.app.store
        run = self._run(run_id)
        by_task: dict[int, list[Any]] = {}
        for row in store.run_validations(run_id):
            by_task.setdefault(row.task_id, []).append(row)
        tasks = {t.id: t for t in store.list_tasks()} if by_task else {}
        tables = []
        for task_id, rows in by_task.items():
            task = tasks.get(task_id)
            if task is None:
                continue
            shown = TableValidation.from_rows(task.source, task.destination, rows, task.strategy)
            levels = [
                LevelOutcome(
                    level=r.level,
                    level_name=r.level_name,
                    comparator=r.comparator,
                    passed=r.passed,
                    summary=r.summary,
                    proves=r.proves,
                    details=dict(r.details),
                )
                for r in shown.results
            ]
            tables.append(
                TableReport(
                    source=task.source,
                    destination=task.destination,
                    strategy=task.strategy,
                    verdict=shown.verdict,
                    levels=levels,
                )
            )
        tables.sort(key=lambda t: t.source)
        site = self._site(run.report_path)
        pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")) if site else []
        pages.sort(key=lambda p: p != "index.html")
        return ValidationReport(
            run_id=run.id,
            kind=run.kind,
            status=run.status,
            html=self._path(run.report_path) is not None,
            data_docs=pages,
            tables=tables,
        )

    def html(self, run_id: int) -> str:
        """The HTML report the run wrote (NotFoundError when it wrote none)."""
        run = self._run(run_id)
        path = self._path(run.report_path)
        if path is None:
            raise _no_report(run_id)
        return path.read_text(encoding="utf-8")

    def data_docs(self, run_id: int, page: str) -> Path:
        """A file of the Data Docs site the run wrote (``index.html`` for an empty ``page``), confined to that
        site's folder: a path that leaves it, by ``..`` or a link, is NotFoundError like a missing file."""
        run = self._run(run_id)
        site = self._site(run.report_path)
        if site is None:
            raise NotFoundError(
                f"run {run_id} wrote no Great Expectations Data Docs: set 'reports: {{data_docs: true}}' in the "
                "configuration and validate again"
            )
        path = (site / (page or "index.html")).resolve()
        if not path.is_relative_to(site) or not path.is_file():
            raise NotFoundError(f"run {run_id}'s Data Docs have no file {page!r}")
        return path

    def _run(self, run_id: int) -> RunRow:
        run = self.app.store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id} in the state store; GET /api/v1/runs lists the runs")
        return run

    def _site(self, recorded: str | None) -> Path | None:
        """The Data Docs site next to the run's HTML report (``gx/`` of its folder), if it has an index."""
        report = self._path(recorded)
        if report is None:
            return None
        from icebridge.validation.gx import SITE_FOLDER

        site = (report.parent / SITE_FOLDER).resolve()
        return site if site.is_relative_to(report.parent) and (site / "index.html").is_file() else None

    def _own_folder(self, recorded: str | None) -> Path | None:
        """The recorded report, if it is in a folder of its run's own inside the reports folder (``run-N/``):
        a link opens that whole folder, never the reports folder itself."""
        report = self._path(recorded)
        folder = self.app.config.reports_dir.resolve()
        return report if report is not None and report.parent != folder else None

    def _path(self, recorded: str | None) -> Path | None:
        """The recorded report, if it is a file inside this configuration's reports folder (nothing else is served)."""
        if not recorded:
            return None
        path = Path(recorded).resolve()
        folder = self.app.config.reports_dir.resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
