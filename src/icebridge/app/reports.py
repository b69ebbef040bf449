"""Validation reports: the HTML report of a run (and Great Expectations Data Docs when asked for)."""

from __future__ import annotations

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
        "each served at /api/v1/reports/{run_id}/data-docs/{page}; none when it wrote none.",
    )
    tables: list[TableReport]


class ReportService:
    """Serves what runs validated: the stored comparator results, and the HTML report a run wrote."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

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
            raise NotFoundError(
                f"run {run_id} has no HTML report: only migrate, validate and cutover runs that validated a "
                "table write one"
            )
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

    def _path(self, recorded: str | None) -> Path | None:
        """The recorded report, if it is a file inside this configuration's reports folder (nothing else is served)."""
        if not recorded:
            return None
        path = Path(recorded).resolve()
        folder = self.app.config.reports_dir.resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
