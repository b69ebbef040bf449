"""The validate step links the Great Expectations Data Docs a run wrote, each page opened with the token."""

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
from tests.browser.estates import hostile_estate

pytestmark = pytest.mark.slow


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

    tab = wizard(serve(config))
    page = tab.page
    tab.open("validate")
    tab.sign_in()
    docs = page.get_by_role("region", name="Great Expectations Data Docs")
    expect(docs).to_be_visible()
    buttons = docs.get_by_role("button")
    expect(buttons.first).to_have_text("Open the Data Docs index")
    expect(buttons.filter(has_text=re.compile(r"^Open validations/.+\.html$"))).to_have_count(1)
    tab.accessible()
    tab.shot("data-docs-links")

    with page.context.expect_page() as opened:
        buttons.first.click()
    index = opened.value
    index.wait_for_load_state()
    assert index.url.startswith("blob:")
    body = index.locator("body").inner_text()
    assert "Data Docs | icebridge" in body and "Validation Results" in body, body[:500]
    index.close()
    with page.context.expect_page() as opened:
        buttons.filter(has_text="Open validations/").click()
    result = opened.value
    result.wait_for_load_state()
    text = result.locator("body").inner_text()
    assert "Values in source and destination must always be equal" in text, text[:500]
    result.close()
