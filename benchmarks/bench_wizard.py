"""The web wizard in Debian's Chromium: the discover page's load and search at 2,000 and 10,000 tables, and
the time from a batch commit to its progress on screen.

* **Load**: from the navigation to ``#/discover`` (signed in; a new document) to the first page of rows
  in it, on the page's own clock — cold (the server builds its rows of the saved inventory) and warm.
* **Search**: from the last keystroke of a search (``table_0123``, ten matches) to the page showing its
  answer, on the page's clock and including the page's 120 ms wait for more keystrokes; the server's
  own answer time for such a request is beside it.
* **Batch to screen**: a migration of one table committed one file at a time, watched on the run page;
  for every batch, the time from the ``batch-committed`` event (stamped by the server when the commit
  is done) to the row showing that batch (a MutationObserver in the page). Same machine, same clock.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import BenchmarkError

TOKEN_HEADER = "Authorization"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if ordered else float("nan")


def _signed_in(browser: Any, url: str, token: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/#/connect")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", level=1, name="Connect").wait_for()
    return page


def _discover(browser: Any, root: Path, tables: int, repeats: int) -> list[str]:
    from tests.api.conftest import TOKEN, start_server
    from tests.browser.estates import large_inventory

    config = large_inventory(root / f"inventory-{tables}", tables)
    server = start_server(config, root / f"server-{tables}.log")
    try:
        page = _signed_in(browser, server.url, TOKEN)
        status = page.locator("#inventory-status")
        loads: list[float] = []
        for _ in range(repeats + 1):
            # a new document each time: the page's clock starts at its navigation
            page.goto("about:blank")
            page.goto(f"{server.url}/#/discover")
            status.filter(has_text=f"of {tables:,} matching").wait_for(timeout=120_000)
            loads.append(float(page.evaluate("() => document.body.dataset.inventoryShownAt")) / 1000)
        cold, warm = loads[0], loads[1:]
        rows = page.locator("#inventory-table tbody tr").count()
        searches: list[float] = []
        search = page.get_by_label("Search tables")
        for i in range(repeats * 3):
            # table_0123 matches table_01230 to table_01239; its prefix table_012 a hundred tables
            query = f"table_{(123 + i * 7) % (tables // 10):04d}"
            search.fill(query[:-1])
            status.filter(has_text=" of 100 matching").wait_for(timeout=60_000)
            started = float(page.evaluate("() => performance.now()"))
            search.fill(query)
            status.filter(has_text=" of 10 matching").wait_for(timeout=60_000)
            shown = float(page.evaluate("() => document.body.dataset.inventoryShownAt"))
            searches.append((shown - started) / 1000)
        with httpx.Client(base_url=server.url, headers={TOKEN_HEADER: f"Bearer {TOKEN}"}) as client:
            api: list[float] = []
            for i in range(repeats * 3):
                started = time.perf_counter()
                client.get("/api/v1/inventory/tables", params={"q": f"table_{i:04d}", "limit": 50}).raise_for_status()
                api.append(time.perf_counter() - started)
        page.context.close()
    finally:
        server.stop()
    return [
        f"| {tables:,} | {cold * 1000:.0f} ms | {_median(warm) * 1000:.0f} ms | {_median(searches) * 1000:.0f} ms "
        f"(p95 {_p95(searches) * 1000:.0f} ms) | {_median(api) * 1000:.1f} ms | {rows} |"
    ]


def _batch_latency(browser: Any, root: Path, files: int) -> tuple[list[float], int]:
    from tests.api.conftest import TOKEN, start_server
    from tests.browser.estates import hostile_estate

    config = hostile_estate(root / "batches", files=files)
    config.write_text(config.read_text() + "migrate:\n  files_per_commit: 1\n")
    server = start_server(config, root / "server-batches.log")
    try:
        page = _signed_in(browser, server.url, TOKEN)
        page.goto(f"{server.url}/#/run")
        page.get_by_role("button", name="Start migration").click()
        page.locator("#run-tables tbody tr").first.wait_for(timeout=60_000)
        page.evaluate(
            """() => {
                 window.seenBatches = [];
                 window.watchedFrom = Date.now();
                 const body = document.querySelector('#run-tables tbody');
                 const seen = new Set();
                 new MutationObserver((changes) => {
                   const now = Date.now();
                   for (const c of changes) {
                     const key = `${c.target.dataset.table} ${c.target.dataset.lastBatch}`;
                     if (c.attributeName === 'data-last-batch' && !seen.has(key)) {
                       seen.add(key);
                       window.seenBatches.push([c.target.dataset.lastBatch, c.target.dataset.lastBatchAt, now]);
                     }
                   }
                 }).observe(body, {attributes: true, subtree: true, attributeFilter: ['data-last-batch']});
               }"""
        )
        page.locator("#run-status").filter(has_text="succeeded").wait_for(timeout=600_000)
        seen: list[list[str | float]] = page.evaluate("() => window.seenBatches")
        watched_from = float(page.evaluate("() => window.watchedFrom")) / 1000
        page.context.close()
    finally:
        server.stop()
    # batches committed before the page watched come with the stream's history: not a live latency
    latencies = [float(shown) / 1000 - _epoch(str(at)) for _batch, at, shown in seen if _epoch(str(at)) > watched_from]
    return latencies, len(latencies)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run(data_dir: Path, quick: bool) -> str:
    from pathlib import Path as _Path

    chromium = _Path("/usr/bin/chromium")
    if not chromium.exists():
        raise BenchmarkError("needs /usr/bin/chromium: run `bash scripts/ensure-browser.sh`")
    from playwright.sync_api import sync_playwright

    repeats = 2 if quick else 5
    files = 30 if quick else 80
    lines = [
        "## Web wizard",
        "",
        "Debian's Chromium driven by Playwright against `icebridge serve` (SQLite store) on this machine. "
        "The discover page's inventory is a saved one (no catalog is read); one page holds 50 rows. "
        "Search includes the page's 120 ms wait for further keystrokes.",
        "",
        "| tables | first load (cold) | load (warm, median) | search to screen (median) | API answer (median) "
        "| rows in the page |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="icebridge-wizard-", dir=data_dir if data_dir.exists() else None) as tmp:
        root = Path(tmp)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium))
            try:
                for tables in (2_000, 10_000):
                    lines += _discover(browser, root, tables, repeats)
                latencies, batches = _batch_latency(browser, root, files)
            finally:
                browser.close()
    if not latencies:
        raise BenchmarkError("no batch reached the run page", "\n".join(lines))
    lines += [
        "",
        f"Batch commit to its progress on screen ({batches} batches of one file, one table, live stream): "
        f"median {_median(latencies) * 1000:.0f} ms, p95 {_p95(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms.",
    ]
    return "\n".join(lines)
