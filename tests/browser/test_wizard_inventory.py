"""An inventory of 2,000 tables stays responsive: the page shows one page of rows, and every search,
sort and page answers with the right tables — the last search typed wins, whatever came back before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.estates import facts_of, large_inventory

pytestmark = pytest.mark.slow
TABLES = 2_000


def test_two_thousand_tables(tmp_path: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    server = serve(large_inventory(tmp_path / "estate", TABLES))
    tab = wizard(server)
    page = tab.page
    tab.open("discover")
    tab.sign_in()
    status = page.locator("#inventory-status")
    rows = page.locator("#inventory-table tbody tr")
    expect(status).to_have_text("Showing 1–50 of 2,000 matching tables (2,000 in the inventory).")
    expect(rows).to_have_count(50)  # one page in the document, not two thousand rows
    expect(rows.first.locator("th")).to_have_text("foreign.ns_00.table_00000")

    # typed key by key: each keystroke may start a search; what is shown is the answer to the last one
    search = page.get_by_label("Search tables")
    search.press_sequentially("table_0199", delay=15)
    expect(status).to_have_text("Showing 1–10 of 10 matching tables (2,000 in the inventory).")
    expect(rows.locator("th")).to_have_text([f"foreign.ns_{i % 20:02d}.table_{i:05d}" for i in range(1990, 2000)])
    search.fill("ns_07 blocked")
    blocked = [i for i in range(TABLES) if i % 20 == 7 and i % 50 == 7]
    expect(status).to_have_text(f"Showing 1–{len(blocked)} of {len(blocked)} matching tables (2,000 in the inventory).")
    expect(rows.first).to_contain_text("metadata file missing — fix: restore the file")
    search.fill("no such table")
    expect(status).to_have_text("No table matches (2,000 in the inventory).")
    expect(rows).to_have_count(0)
    search.fill("")
    expect(status).to_have_text(re.compile(r"^Showing 1–50 of 2,000 "))

    # sorted by size, largest first, on the server: the first row is the largest of all 2,000
    page.get_by_role("button", name="Size").click()
    largest = max(range(TABLES), key=lambda i: (facts_of(i).data_bytes, -i))
    expect(rows.first.locator("th")).to_have_text(facts_of(largest).table)
    page.get_by_role("button", name="Next page").click()
    expect(status).to_have_text("Showing 51–100 of 2,000 matching tables (2,000 in the inventory).")
    expect(page.get_by_text("Page 2 of 40")).to_be_visible()
    page.get_by_label("Tables per page").select_option("200")
    expect(rows).to_have_count(200)
    expect(status).to_have_text("Showing 1–200 of 2,000 matching tables (2,000 in the inventory).")
    expect(page.get_by_role("img", name="Bytes by namespace")).to_be_visible()
    tab.accessible()
    tab.shot("discover-2000")
