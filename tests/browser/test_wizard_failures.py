"""Names are text, never markup; a failed table shows its reason and is retried; a run is cancelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.demo import catalog_properties
from tests.browser.estates import HOSTILE, hostile_estate

pytestmark = pytest.mark.slow
TABLE = f"foreign.xss.{HOSTILE}"
FAULTY = f"""engines:
  faulty:
    terminal_commit_probability: 1.0
    tables: ["{TABLE}"]
migrate:
  files_per_commit: 1
"""


def injected(page: Any) -> int:
    """Elements that only an injected name could have put there."""
    return int(page.evaluate("() => document.querySelectorAll('main img, main script, main [onerror]').length"))


def test_a_hostile_name_failure_retry_and_cancel(tmp_path: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    config = hostile_estate(tmp_path / "estate", files=60)
    config.write_text(config.read_text() + FAULTY)
    server = serve(config)
    tab = wizard(server)
    page = tab.page
    main = page.locator("main")
    tab.open("discover")
    tab.sign_in()

    page.get_by_role("button", name="Read the catalogs again").click()
    name = page.get_by_role("rowheader", name=TABLE, exact=True)
    expect(name).to_have_text(TABLE)
    assert injected(page) == 0
    tab.shot("discover-hostile-name")

    tab.step("Map")
    preview = page.locator("#preview-table tbody tr")
    expect(preview).to_have_count(1)
    expect(preview.locator("td").nth(1)).to_have_text(f"managed.xss.{HOSTILE}")
    assert injected(page) == 0

    # a table whose every commit is refused fails with its reason, and offers a retry
    tab.step("Run")
    page.get_by_label("Engine (optional)").fill("faulty")
    page.get_by_role("button", name="Start migration").click()
    status = page.locator("#run-status")
    expect(status).to_have_text("failed · 1 of 1 tables done · 1 failed", timeout=120_000)
    line = page.locator("#run-tables tbody tr").first
    expect(line.locator(".reason")).to_contain_text("injected by the faulty engine")
    expect(line.locator("th")).to_have_text(TABLE)
    assert injected(page) == 0
    tab.accessible()
    tab.shot("run-failed")

    # the retry (local engine) is cancelled part-way: the table stops between commits
    page.get_by_role("button", name=f"Retry {TABLE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Run 3: migrate")
    page.wait_for_function("() => document.querySelector('#run-tables tr[data-last-batch]') !== null", timeout=120_000)
    page.get_by_role("button", name="Cancel the run").click()
    expect(status).to_have_text("interrupted · 1 of 1 tables done · 1 failed", timeout=120_000)
    expect(line.locator(".reason")).to_contain_text("interrupted")
    managed = SqlCatalog("managed", **catalog_properties(tmp_path / "estate")["managed"])
    copied = managed.load_table(("xss", HOSTILE)).scan().to_arrow().num_rows
    assert 0 < copied < 600
    tab.shot("run-cancelled")

    # retried again, it resumes and finishes
    page.get_by_role("button", name=f"Retry {TABLE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Run 4: migrate")
    expect(status).to_have_text("succeeded · 1 of 1 tables done", timeout=180_000)
    copy = managed.load_table(("xss", HOSTILE)).scan().to_arrow()
    assert copy.num_rows == 600 and set(copy.column("label").to_pylist()) == {HOSTILE}
    assert injected(page) == 0

    page.get_by_role("link", name="See the validation of run 4").click()
    expect(page.get_by_role("region", name=f"Validation of {TABLE}")).to_contain_text("passed")
    assert injected(page) == 0
    tab.step("Cut over / Roll back")
    expect(main.get_by_label(f"{TABLE} → managed.xss.{HOSTILE}")).to_be_visible()
    assert injected(page) == 0
    # the confirmation's changes, written by the server, carry the name as text too
    main.get_by_label(f"{TABLE} → managed.xss.{HOSTILE}").check()
    page.get_by_role("button", name="Cut over the chosen tables…").click()
    changes = page.get_by_role("dialog").get_by_role("region", name=f"Changes to {TABLE}")
    expect(changes.get_by_role("heading")).to_have_text(f"{TABLE} (governance: none)")
    expect(changes).to_contain_text(f"The entry {TABLE} is dropped from its catalog (no file is deleted)")
    assert injected(page) == 0
    tab.accessible()
    tab.shot("cutover-hostile-name")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

    # a row written into the destination behind IceBridge's back: validation fails and shows that row
    destination = managed.load_table(("xss", HOSTILE))
    destination.append(
        pa.Table.from_pylist([{"id": 99_999, "label": "not in the source"}], schema=destination.schema().as_arrow())
    )
    tab.step("Validate")
    page.get_by_role("button", name="Validate again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Run 5: validate")
    expect(status).to_have_text("failed · 1 of 1 tables done · 1 failed", timeout=120_000)
    page.get_by_role("link", name="See the validation of run 5").click()
    expect(page.get_by_role("img", name="Tables passed")).to_contain_text("0/1")
    report = page.get_by_role("region", name=f"Validation of {TABLE}")
    expect(report.locator(".meta")).to_contain_text("failed")
    drill = report.get_by_role("row").filter(has_text="drill-down")
    expect(drill).to_contain_text("1 row(s) on one side only")
    drill.get_by_text("Details and differing rows").click()
    expect(drill.get_by_role("cell", name="not in the source", exact=True)).to_be_visible()
    expect(drill.get_by_role("cell", name="99999", exact=True)).to_be_visible()
    assert injected(page) == 0
    tab.accessible()
    tab.shot("validate-mismatch")
