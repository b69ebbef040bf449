"""The whole wizard on the demo estate, as a person goes through it: sign in, connect, discover, map,
preflight, run (watched from a second tab too), validate, cut over and roll back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.demo import build_estate, catalog_properties
from tests.api.conftest import SRC

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo estate, not migrated yet, with one file per commit so a copy takes long enough to watch."""
    config = build_estate(tmp_path / "demo", 0.01)
    config.write_text(config.read_text() + "migrate:\n  files_per_commit: 2\n  concurrency: 2\n")
    return config


def row(rows: Any, name: str) -> Any:
    """The row of ``rows`` whose header cell is ``name``."""
    return rows.filter(has=rows.page.get_by_role("rowheader", name=name, exact=True))


def catalog(root: Path, name: str) -> SqlCatalog:
    return SqlCatalog(name, **catalog_properties(root)[name])


def test_the_whole_wizard_on_the_demo_estate(demo: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    root = demo.parent
    server = serve(demo)
    tab = wizard(server)
    page = tab.page
    main = page.locator("main")

    # a page load without a token shows the prompt and nothing of the estate
    tab.open("discover")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Migration steps")).to_be_hidden()
    assert "foreign" not in page.locator("body").inner_text()
    tab.accessible()
    tab.shot("sign-in")
    tab.sign_in("not-the-token-0123456789")
    expect(page.get_by_role("alert")).to_have_text("That token was refused by the server. Check it and try again.")
    assert page.evaluate("() => sessionStorage.getItem('icebridge.token')") is None
    tab.sign_in()
    expect(page.get_by_role("heading", level=1, name="Discover")).to_be_visible()

    # connect: both catalogs answer; the managed storage takes a probe and is left as it was
    tab.step("Connect")
    page.get_by_role("button", name="Test connection to foreign").click()
    expect(main.get_by_text(re.compile(r"Connected: foreign answered in \d+\.\d\d s\."))).to_be_visible()
    page.get_by_role("button", name="Test connection to managed").click()
    expect(main.get_by_text(re.compile(r"Connected: managed answered in"))).to_be_visible()
    warehouse = root / "managed-warehouse"
    before = sorted(p.name for p in warehouse.rglob("*"))
    page.get_by_label("Destination catalog").select_option("managed")
    page.get_by_role("button", name="Check storage").click()
    expect(main.get_by_text(f"wrote, read back and deleted a probe under file://{warehouse}")).to_be_visible()
    assert sorted(p.name for p in warehouse.rglob("*")) == before
    tab.accessible()
    tab.shot("connect")

    # discover: no inventory yet; read it, then search and sort
    tab.step("Discover")
    expect(main.get_by_text("No inventory yet: read the catalogs first.")).to_be_visible()
    page.get_by_role("button", name="Read the catalogs again").click()
    status = page.locator("#inventory-status")
    expect(status).to_have_text("Showing 1–7 of 7 matching tables (7 in the inventory).")
    rows = page.locator("#inventory-table tbody tr")
    expect(rows).to_have_count(7)
    lineitem = row(rows, "foreign.tpch.lineitem")
    expect(lineitem).to_contain_text("partitioned")
    expect(row(rows, "foreign.tpch.orders")).to_contain_text("partition evolution")
    expect(row(rows, "foreign.tpch.customer")).to_contain_text("schema evolution")
    page.get_by_role("button", name="Size").click()
    expect(rows.first.locator("th")).to_have_text("foreign.tpch.lineitem")
    expect(page.locator("th[aria-sort='descending']")).to_have_text("Size")
    page.get_by_label("Search tables").fill("order")
    expect(status).to_have_text("Showing 1–2 of 2 matching tables (7 in the inventory).")
    expect(rows.locator("th")).to_have_text(["foreign.sales-eu.order events", "foreign.tpch.orders"])
    page.get_by_label("Search tables").fill("schema evolution")
    expect(rows.locator("th")).to_have_text(["foreign.tpch.customer"])
    expect(page.get_by_role("img", name="Bytes by namespace")).to_be_visible()
    tab.accessible()
    tab.shot("discover")

    # map: a rename that sends five sources to one destination is a collision, shown before anything is saved
    tab.step("Map")
    summary = page.locator("#preview-summary")
    expect(summary).to_have_text("7 mapped, 0 not mapped, 0 blocked, 0 in collisions.")
    page.locator("#rule-1-rename").fill("everything")
    expect(summary).to_have_text("7 mapped, 0 not mapped, 5 blocked, 5 in collisions.")
    preview = page.locator("#preview-table tbody tr")
    nation = row(preview, "foreign.tpch.nation")
    expect(nation).to_contain_text("managed.tpch.everything")
    expect(nation).to_contain_text("collision")
    expect(nation).to_have_class("collision")
    tab.shot("map-collision")
    page.locator("#rule-1-rename").fill("")
    page.locator("#rule-2-target").fill("nowhere.sales")
    expect(page.locator("#rule-2-target-error")).to_have_text("unknown catalog 'nowhere'; configured: foreign, managed")
    expect(page.locator("#rule-2-target")).to_have_attribute("aria-invalid", "true")
    page.locator("#rule-2-target").fill("managed.sales")
    expect(summary).to_have_text("7 mapped, 0 not mapped, 0 blocked, 0 in collisions.")
    expect(row(preview, "foreign.sales-eu.order events")).to_contain_text("managed.sales.order events")
    tab.accessible()
    text_before = demo.read_text()
    page.get_by_role("button", name="Save the rules").click()
    expect(page.get_by_role("status")).to_have_text(f"Saved 4 rules to {demo}.")
    saved = demo.read_text()
    assert saved.split("mappings:")[0] == text_before.split("mappings:")[0]  # the rest is kept as written
    assert saved.endswith("migrate:\n  files_per_commit: 2\n  concurrency: 2\n")
    # the CLI reads the same rules
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    plan = subprocess.run(
        [sys.executable, "-m", "icebridge", "plan", "-c", str(demo), "--json"], capture_output=True, text=True, env=env
    )
    assert plan.returncode == 0, plan.stderr
    destinations = {t["source"]: t["destination"] for t in json.loads(plan.stdout)["tables"]}
    assert destinations["foreign.sales-eu.order events"] == "managed.sales.order events"
    tab.shot("map-saved")

    # preflight: findings grouped by severity
    tab.step("Preflight")
    page.get_by_role("button", name="Run pre-flight").click()
    expect(main.get_by_text("7 tables checked: 0 blockers")).to_be_visible()
    expect(page.get_by_role("heading", name="Blockers (0)")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile(r"Warnings \(\d+\)"))).to_be_visible()
    tab.accessible()
    tab.shot("preflight")

    # run: started here, watched live here and from a second tab
    tab.step("Run")
    page.get_by_role("button", name="Start migration").click()
    expect(page).to_have_url(re.compile(r"#/run/\d+$"), timeout=30_000)
    run_id = int(page.url.rsplit("/", 1)[1])
    other = wizard(server)
    other.open(f"run/{run_id}")
    other.sign_in()
    for seen in (tab, other):
        line = seen.page.locator("tr[data-table='foreign.tpch.lineitem']")
        # live: a progress bar part-way, its bytes against the total, and a throughput
        seen.page.wait_for_function(
            """() => [...document.querySelectorAll('#run-tables progress')].some(p => p.value > 0 && p.value < 1)""",
            timeout=120_000,
        )
        expect(line).to_be_visible(timeout=120_000)  # once the table starts
    for seen in (tab, other):
        expect(seen.page.locator("#run-status")).to_have_text("succeeded · 7 of 7 tables done", timeout=300_000)
        rows = seen.page.locator("#run-tables tbody tr")
        expect(rows).to_have_count(7)
        expect(rows.locator(".state")).to_have_text(["succeeded"] * 7)
        expect(seen.page.get_by_role("img", name="Bytes copied over time")).to_be_visible()
        expect(seen.page.get_by_role("img", name="Phases per table")).to_be_visible()
        expect(seen.page.get_by_role("button", name="Cancel the run")).to_be_hidden()
    assert int(other.page.locator("tr[data-table='foreign.tpch.lineitem']").get_attribute("data-last-batch")) >= 1
    tab.accessible()
    tab.shot("run-finished")
    other.shot("run-second-tab")

    # validate: pass/fail at a glance, the levels per table, the HTML report
    page.get_by_role("link", name=f"See the validation of run {run_id}").click()
    expect(page.get_by_role("heading", name=f"Run {run_id}: migrate succeeded")).to_be_visible()
    expect(page.get_by_role("img", name="Tables passed")).to_contain_text("7/7")
    tiles = page.get_by_role("list", name="Verdict per table").get_by_role("listitem")
    expect(tiles).to_have_count(7)
    expect(tiles.filter(has_text="failed")).to_have_count(0)
    lineitem_report = page.get_by_role("region", name="Validation of foreign.tpch.lineitem")
    expect(lineitem_report).to_contain_text("file-identity")
    expect(lineitem_report.get_by_text("passed").first).to_be_visible()
    tab.accessible()
    tab.shot("validate")
    with page.context.expect_page() as opened:
        page.get_by_role("button", name=f"Open the HTML report of run {run_id}").click()
    report = opened.value
    report.wait_for_load_state()
    assert "foreign.tpch.lineitem" in report.locator("body").inner_text()
    report.close()

    # cut over two tables behind a confirmation naming them and what changes
    tab.step("Cut over / Roll back")
    page.get_by_label("foreign.tpch.nation → managed.tpch.nation").check()
    page.get_by_label("foreign.tpch.region → managed.tpch.region").check()
    page.get_by_role("button", name="Cut over the chosen tables…").click()
    dialog = page.get_by_role("dialog", name="Cut over 2 tables?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("list").first.get_by_role("listitem")).to_have_text(
        ["foreign.tpch.nation → managed.tpch.nation", "foreign.tpch.region → managed.tpch.region"]
    )
    # what changes, per table, as the server reads it: here the none adapter, with no grants to swap
    for name in ("nation", "region"):
        changes = dialog.get_by_role("region", name=f"Changes to foreign.tpch.{name}")
        expect(changes.get_by_role("heading")).to_have_text(f"foreign.tpch.{name} (governance: none)")
        expect(changes.get_by_role("listitem")).to_have_text(
            [
                "Writers (none governance): no write privileges to revoke: catalog 'foreign' is an open catalog; "
                "writers are stopped only by the quiet-period check.",
                "Quiet period: none (cutover.quiet_seconds is 0).",
                "The source's commits since the copy are synced, then the table is validated again; "
                "a failure stops the cut-over here.",
                "Grants (none governance): no grants to swap: 'foreign' and 'managed' are open catalogs.",
                f"The entry foreign.tpch.{name} is dropped from its catalog (no file is deleted) and its metadata "
                f"location archived for a roll back; readers then read managed.tpch.{name}.",
            ]
        )
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    tab.accessible()
    tab.shot("cutover-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    opener = page.get_by_role("button", name="Cut over the chosen tables…")
    expect(opener).to_be_focused()  # the focus goes back where it came from
    opener.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    foreign = catalog(root, "foreign")
    assert foreign.table_exists(("tpch", "nation"))  # nothing happened on cancel
    page.get_by_role("button", name="Cut over the chosen tables…").click()
    dialog.get_by_role("button", name="Cut over 2 tables").click()
    expect(main.get_by_text("Cut over: all 2 runs succeeded.")).to_be_visible(timeout=180_000)
    assert not foreign.table_exists(("tpch", "nation")) and not foreign.table_exists(("tpch", "region"))
    managed = catalog(root, "managed")
    assert managed.load_table(("tpch", "nation")).scan().to_arrow().num_rows == 25
    expect(page.get_by_role("heading", name="Cut over, can be rolled back (2)")).to_be_visible()
    tab.shot("cut-over")

    # roll back one of them
    page.get_by_role("region", name=re.compile("Cut over, can be rolled back")).get_by_label(
        "foreign.tpch.nation → managed.tpch.nation"
    ).check()
    page.get_by_role("button", name="Roll back the chosen tables…").click()
    dialog = page.get_by_role("dialog", name="Roll back 1 table?")
    expect(dialog).to_contain_text("foreign.tpch.nation is registered again in its catalog from file://")
    expect(dialog.get_by_role("region", name="Changes to foreign.tpch.nation")).to_contain_text(
        "Grants (none governance): nothing to undo: the swap from foreign.tpch.nation to managed.tpch.nation "
        "changed no grant."
    )
    tab.shot("rollback-confirm")
    dialog.get_by_role("button", name="Roll back 1 table").click()
    expect(main.get_by_text("Roll back: all 1 runs succeeded.")).to_be_visible(timeout=180_000)
    assert foreign.table_exists(("tpch", "nation")) and not foreign.table_exists(("tpch", "region"))
    assert foreign.load_table(("tpch", "nation")).scan().to_arrow().num_rows == 25
    tab.accessible()
    tab.shot("rolled-back")

    # sync: the copied tables' lag, read from their sources
    tab.step("Sync")
    expect(page.locator("#lag-table tbody tr").first).to_be_visible()
    expect(row(page.locator("#lag-table tbody tr"), "foreign.tpch.lineitem")).to_contain_text("0")
    tab.accessible()
    tab.shot("sync")
