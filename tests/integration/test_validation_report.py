"""The HTML report and the Great Expectations Data Docs, rendered from validation rows as the store returns them."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from pyiceberg.table import Table

from icebridge.phases.validate import compare
from icebridge.store import open_store
from icebridge.validation import gx
from icebridge.validation.report import TableValidation, write_html_report
from tests.integration.validation_fixtures import base_rows, changed, label_of, make_destination, make_source, traits

ROWS = base_rows()
HOSTILE = "<script>alert('x')</script> & \x00"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Table:
    return make_source(tmp_path_factory.mktemp("source"))


def _stored(state_url: str, source: Table, destinations: dict[str, Table]) -> list[TableValidation]:
    """Validate each destination, store the results as the runner does, read them back from the store."""
    store = open_store(state_url)
    try:
        run_row = store.start_run("validate", "icebridge.yaml", {})
        tables = []
        snapshot = source.current_snapshot()
        assert snapshot is not None
        for name, destination in destinations.items():
            task = store.plan_task(f"src.ns.{name}", f"dst.ns.{name}", "rewrite", "test")
            for r in compare(source, snapshot.snapshot_id, destination, **traits("rewrite")):
                store.record_validation(
                    task.id, run_row.id, r.level, r.comparator, r.passed, {"summary": r.summary, **r.details}
                )
            rows = store.validations(task.id, run_row.id)
            tables.append(TableValidation.from_rows(task.source, task.destination, rows, strategy="rewrite"))
        return tables
    finally:
        store.close()


def test_report_from_stored_rows_shows_verdicts_levels_and_the_located_row(
    state_url: str, source: Table, tmp_path: Path
) -> None:
    good = make_destination(tmp_path / "good", split=2)
    bad = make_destination(tmp_path / "bad", changed(ROWS, 4, s=HOSTILE))
    tables = _stored(state_url, source, {"good": good, "bad": bad})
    assert [t.verdict for t in tables] == ["passed", "failed"]

    path = write_html_report(tmp_path / "reports" / "run-1.html", {"run": 1, "command": "validate"}, tables)
    text = path.read_text(encoding="utf-8")
    # self-contained: no script, no external asset
    assert "<script" not in text.replace(html.escape("<script>"), "")
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text)
    assert "<style>" in text
    # the summary names both tables with their verdicts and levels
    assert "src.ns.good" in text and "src.ns.bad" in text
    assert "1 passed, 1 failed" in text
    assert "4 content digest" in text
    # what each level proved is written out for the passing table
    assert "equal as a multiset" in text
    # the failing table: its partition, the changed column and the row, escaped
    assert label_of(ROWS[4]) in text
    assert html.escape("name-4") in text
    assert html.escape(json.dumps("<script>alert('x')</script> & \\x00")[1:-1]) in text or "&lt;script&gt;" in text
    assert "Changed rows" in text


def test_error_and_unvalidated_tables_are_never_shown_as_passed(tmp_path: Path) -> None:
    tables = [
        TableValidation("src.a.t", "dst.a.t", (), "rewrite", error="data file x.parquet: cannot open"),
        TableValidation("src.a.u", "dst.a.u", (), "rewrite"),
    ]
    text = write_html_report(tmp_path / "r.html", {"run": 2}, tables).read_text(encoding="utf-8")
    assert [t.verdict for t in tables] == ["error", "not validated"]
    assert "Validation could not run: data file x.parquet: cannot open" in text
    assert "passed" not in re.sub(r"<style>.*?</style>", "", text, flags=re.S).split("Summary")[1].split("Levels:")[0]


def test_great_expectations_checkpoint_writes_data_docs_that_flag_the_mismatch(source: Table, tmp_path: Path) -> None:
    assert gx.available(), f"Great Expectations is not installed: {gx.GX_EXTRA}"
    bad = make_destination(tmp_path / "bad", [r for r in ROWS if r["id"] != 4])
    snapshot = source.current_snapshot()
    assert snapshot is not None
    results = compare(source, snapshot.snapshot_id, bad, **traits("rewrite"))
    table = TableValidation.from_rows("src.ns.bad", "dst.ns.bad", results, strategy="rewrite")
    rows = gx.metric_rows(table)
    assert {"metadata-partitions", "content-digest"} <= {r["comparator"] for r in rows}
    index = gx.write_data_docs(tmp_path / "report", [table])
    assert index is not None and index == tmp_path / "report" / "gx" / "index.html"
    pages = list((tmp_path / "report" / "gx" / "validations").rglob("*.html"))
    assert pages, "no validation result page in the Data Docs"
    page = pages[0].read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script).*?</\1>", "", page, flags=re.S)))
    assert "Values in source and destination must always be equal" in text
    assert "Status: Failed" in text
    assert "Unsuccessful Expectations 1" in text
    index_text = index.read_text(encoding="utf-8")
    assert "src.ns.bad" in index_text or "src.ns.bad".replace(".", "_") in index_text


def test_data_docs_need_the_gx_extra_or_name_it(tmp_path: Path) -> None:
    if gx.available():
        assert gx.write_data_docs(tmp_path, []) is None  # nothing compared: no Data Docs
    else:
        with pytest.raises(Exception, match=re.escape(gx.GX_EXTRA)):
            gx.write_data_docs(tmp_path, [])
