"""The validate step opens the Great Expectations Data Docs a run wrote, and its HTML report, in tabs of their
own from signed links: the site's own links, scripts and styles work there, without the token.

What the Data Docs pages load from CDNs (jQuery, Bootstrap, bootstrap-table, its date picker) is served to
them from the copies ``scripts/ensure-browser.sh`` installs; every other request off this server is refused,
so nothing is fetched from a CDN. A request the pages' policy refused never reaches that route.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from icebridge.validation import gx
from tests.api.conftest import SRC
from tests.browser.conftest import ENSURE, REPO
from tests.browser.estates import hostile_estate

pytestmark = pytest.mark.slow

NPM = REPO / "build" / "npm" / "node_modules"
CDN_COPIES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table/dist/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table/dist/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
}


def test_the_validate_page_opens_the_runs_data_docs(tmp_path: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    assert gx.available(), f"Great Expectations is not installed: {gx.GX_EXTRA}"
    config = hostile_estate(tmp_path / "estate", files=2)
    # rewritten, so validation has metrics for Great Expectations to check
    text = config.read_text().replace(
        "    target: managed.{namespace}\n", "    target: managed.{namespace}\n    strategy: rewrite\n"
    )
    config.write_text(text + "reports:\n  data_docs: true\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "icebridge", "migrate", "-c", str(config)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Great Expectations Data Docs:" in done.stdout

    missing = [path for path in CDN_COPIES.values() if not (NPM / path).is_file()]
    if missing:
        pytest.fail(f"the Data Docs test needs {missing[0]} in {NPM}: run `{ENSURE}`", pytrace=False)

    server = serve(config)
    tab = wizard(server)
    page = tab.page
    context = page.context
    offsite: list[tuple[str, str | None]] = []

    def cdn(route: Any) -> None:
        request = route.request
        offsite.append((request.url, request.headers.get("referer")))
        copy = CDN_COPIES.get(request.url)
        if copy:
            route.fulfill(path=str(NPM / copy))
        else:
            route.abort()

    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), cdn)
    problems: list[str] = []
    context.on("page", lambda opened: opened.on("pageerror", lambda exc: problems.append(str(exc))))
    context.on("page", lambda opened: opened.on("dialog", lambda d: (problems.append(d.message), d.dismiss())))

    tab.open("validate")
    tab.sign_in()
    docs = page.get_by_role("region", name="Great Expectations Data Docs")
    expect(docs).to_be_visible()
    buttons = docs.get_by_role("button")
    expect(buttons.first).to_have_text("Open the Data Docs index")
    expect(buttons.filter(has_text=re.compile(r"^Open validations/.+\.html$"))).to_have_count(1)
    tab.accessible()
    tab.shot("data-docs-links")

    # the index, in a tab of its own at the link's address: its table of validation results is built
    with context.expect_page() as opened:
        buttons.first.click()
    index = opened.value
    index.wait_for_load_state()
    run_id = re.escape(str(max(r["id"] for r in server.client().get("/api/v1/runs").json())))
    site = re.compile(rf"^{re.escape(server.url)}/reports/{run_id}/s/[0-9]+\.[A-Za-z0-9_-]+/gx/")
    assert site.match(index.url) and index.url.endswith("/gx/index.html"), index.url
    expect(index.get_by_text("Data Docs | icebridge")).to_be_visible()
    expect(index.get_by_role("tab", name="Validation Results")).to_be_visible()
    panel = index.get_by_role("tabpanel", name="Validation Results")
    results = panel.get_by_role("row").filter(has_text="icebridge_metrics-foreign.xss.")
    expect(results).to_have_count(1)
    expect(results).to_be_visible()
    expect(panel.get_by_role("columnheader", name="Expectation Suite")).to_be_visible()
    expect(panel.get_by_text("Showing 1 to 1 of 1 rows")).to_be_visible()
    index.screenshot(path=str(tab.artifacts / "02-data-docs-index.png"), full_page=True)

    # through to the validation result the row names, and back
    results.click()
    index.wait_for_url(re.compile(r".*/gx/validations/.+\.html$"))
    assert site.match(index.url), index.url
    expect(index.get_by_text("Values in source and destination must always be equal").first).to_be_visible()
    index.screenshot(path=str(tab.artifacts / "03-data-docs-validation.png"), full_page=True)
    index.go_back()
    index.wait_for_url(re.compile(r".*/gx/index\.html$"))
    expect(panel.get_by_role("row").filter(has_text="icebridge_metrics-foreign.xss.")).to_be_visible()
    index.close()

    # the HTML report, the same way
    with context.expect_page() as opened:
        page.get_by_role("button", name=re.compile(r"^Open the HTML report of run")).click()
    report = opened.value
    report.wait_for_load_state()
    assert re.match(rf"^{re.escape(server.url)}/reports/{run_id}/s/[^/]+/report\.html$", report.url), report.url
    expect(report.get_by_text("xss.").first).to_be_visible()
    report.screenshot(path=str(tab.artifacts / "04-html-report.png"), full_page=True)
    report.close()

    # the libraries came from the local copies (the pages' policy let each request out), and no request
    # off this server carried the page's address, token included, as its referrer
    fetched = {url for url, _ in offsite}
    assert set(CDN_COPIES) <= fetched, sorted(set(CDN_COPIES) - fetched)
    assert [url for url, referrer in offsite if referrer] == []
    assert problems == [], problems
