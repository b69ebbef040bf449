"""Validation reports: the HTML report of a run (and Great Expectations Data Docs when asked for)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icebridge.errors import ReportWriteError
from icebridge.events import Note
from icebridge.model import Status

if TYPE_CHECKING:
    from icebridge.context import RunScope
    from icebridge.runner import RunReport

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
