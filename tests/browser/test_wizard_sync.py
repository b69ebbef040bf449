"""The sync step: a source that moved on after the migration shows its lag, and a click syncs it, followed live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.demo import build_estate, catalog_properties
from tests.api.conftest import SRC

pytestmark = pytest.mark.slow


LAGGING = ("customer", "nation", "orders", "region")


def catalog(root: Path, name: str) -> SqlCatalog:
    return SqlCatalog(name, **catalog_properties(root)[name])


def rows_of(root: Path, name: str, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog(root, name).load_table(("tpch", table)).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: sorted(r.items()))


def test_a_lagging_table_is_synced_from_the_page(tmp_path: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    config = build_estate(tmp_path / "demo", 0.01)
    root = config.parent
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    migrate = [sys.executable, "-m", "icebridge", "migrate", "-c", str(config), "--tables", "foreign.tpch.[!l]*"]
    done = subprocess.run(migrate, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    # the sources move on after the migration: one append each (the empty table, with no snapshot, has no lag)
    for name in LAGGING:
        source = catalog(root, "foreign").load_table(("tpch", name))
        source.append(source.scan(limit=3).to_arrow())
        assert rows_of(root, "foreign", name) != rows_of(root, "managed", name)

    tab = wizard(serve(config))
    page = tab.page
    main = page.locator("main")
    tab.open("sync")
    tab.sign_in()
    page.get_by_role("heading", level=1, name="Sync").wait_for()
    lag = page.locator("#lag-table tbody tr")

    def behind(table: str) -> Any:
        return lag.filter(has=page.get_by_role("rowheader", name=table, exact=True)).locator("td").first

    expect(main.get_by_text("4 of 4 copied tables are behind their source.")).to_be_visible()
    for name in LAGGING:
        expect(behind(f"foreign.tpch.{name}")).to_have_text("1")
    tab.accessible()
    tab.shot("lagging")

    # one table: its run is followed on the page, then the lag is read again
    page.get_by_role("button", name="Sync now: foreign.tpch.nation").click()
    runs = page.locator("#sync-tables tbody tr")
    expect(page.get_by_role("heading", name="Sync of 1 table")).to_be_visible()
    expect(runs).to_have_count(1)
    expect(runs.first.locator("th")).to_have_text("foreign.tpch.nation")
    expect(runs.first.get_by_role("link", name="run ")).to_be_visible()
    expect(main.get_by_text("Sync: all 1 runs succeeded.")).to_be_visible(timeout=120_000)
    expect(runs.first.locator(".state")).to_have_text("succeeded")
    expect(page.locator("#sync-status")).to_have_text("1 of 1 sync runs ended")
    expect(behind("foreign.tpch.nation")).to_have_text("0")
    expect(behind("foreign.tpch.region")).to_have_text("1")
    # snapshot ids are 63-bit: shown with every digit, not rounded to a double
    nation = catalog(root, "foreign").load_table(("tpch", "nation")).current_snapshot()
    assert nation is not None
    cells = lag.filter(has=page.get_by_role("rowheader", name="foreign.tpch.nation", exact=True)).locator("td")
    expect(cells.nth(2)).to_have_text(str(nation.snapshot_id))
    expect(cells.nth(3)).to_have_text(str(nation.snapshot_id))
    expect(runs.first.locator("p.meta")).to_contain_text(f"synced to source snapshot {nation.snapshot_id}")
    expect(main.get_by_text("3 of 4 copied tables are behind their source.")).to_be_visible()
    assert rows_of(root, "managed", "nation") == rows_of(root, "foreign", "nation")
    assert rows_of(root, "managed", "region") != rows_of(root, "foreign", "region")
    tab.accessible()
    tab.shot("one-synced")

    # every lagging table: the three left, more than the page follows at once
    page.get_by_role("button", name="Sync the 3 lagging tables").click()
    expect(page.get_by_role("heading", name="Sync of 3 tables")).to_be_visible()
    expect(runs.locator("th")).to_have_text(["foreign.tpch.customer", "foreign.tpch.orders", "foreign.tpch.region"])
    expect(main.get_by_text("Sync: all 3 runs succeeded.")).to_be_visible(timeout=180_000)
    expect(runs.locator(".state")).to_have_text(["succeeded"] * 3)
    expect(page.locator("#sync-status")).to_have_text("3 of 3 sync runs ended")
    expect(main.get_by_text("All 4 copied tables are up to date with their source.")).to_be_visible()
    for name in LAGGING:
        expect(behind(f"foreign.tpch.{name}")).to_have_text("0")
    expect(page.get_by_role("button", name="Sync every lagging table")).to_be_disabled()
    for name in LAGGING:
        assert rows_of(root, "managed", name) == rows_of(root, "foreign", name)
    tab.accessible()
    tab.shot("all-synced")
