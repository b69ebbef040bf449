"""The wizard by keyboard alone: sign in, move through the steps in order, search and sort, and the focus
goes where a person using a screen reader expects it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import TOKEN
from tests.browser.estates import large_inventory

pytestmark = pytest.mark.slow


def focused(page: Any) -> str:
    """What has the focus: its tag and its text or label."""
    return str(
        page.evaluate(
            """() => { const e = document.activeElement;
                       const field = ['INPUT', 'SELECT'].includes(e.tagName);
                       const name = e.getAttribute('aria-label') || (field ? e.id : e.textContent);
                       return `${e.tagName.toLowerCase()}:${name.trim()}`; }"""
        )
    )


def test_keyboard_only(tmp_path: Path, serve: Any, wizard: Any) -> None:
    from playwright.sync_api import expect

    server = serve(large_inventory(tmp_path / "estate", 120))
    tab = wizard(server)
    page = tab.page
    tab.open("discover")
    expect(page.get_by_label("API token")).to_be_focused()  # the prompt takes the focus
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Discover")).to_be_focused()

    # from the top of the page: the skip link, sign out, then the eight steps in their order
    page.locator(".brand").click()  # a click on plain text moves where the next Tab starts from
    page.keyboard.press("Tab")
    assert focused(page) == "button:Sign out"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "a:Skip to the step"  # the first stop of the page
    page.keyboard.press("Tab")
    steps = []
    for _ in range(8):
        page.keyboard.press("Tab")
        steps.append(focused(page))
    assert steps == [
        "a:1Connect",
        "a:2Discover",
        "a:3Map",
        "a:4Preflight",
        "a:5Run",
        "a:6Validate",
        "a:7Sync",
        "a:8Cut over / Roll back",
    ]
    expect(page.get_by_role("link", name="Discover")).to_have_attribute("aria-current", "step")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "a:2Discover"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Connect
    expect(page.get_by_role("heading", level=1, name="Connect")).to_be_focused()
    expect(page.get_by_role("link", name="Connect")).to_have_attribute("aria-current", "step")

    # the skip link lands in the step; the step's controls follow in reading order
    tab.open("discover")
    expect(page.get_by_role("heading", level=1, name="Discover")).to_be_focused()
    page.keyboard.press("Tab")
    assert focused(page) == "input:inventory-search"
    page.keyboard.type("ns_04")
    status = page.locator("#inventory-status")
    expect(status).to_have_text("Showing 1–6 of 6 matching tables (120 in the inventory).")
    page.keyboard.press("Tab")
    assert focused(page) == "select:page-size"
    page.keyboard.press("Tab")
    assert focused(page) == "button:Read the catalogs again"
    page.keyboard.press("Tab")
    assert focused(page) == "button:Table"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused(page) == "button:Size"
    page.keyboard.press("Enter")
    expect(page.locator("th[aria-sort='descending']")).to_have_text("Size")
    sizes = page.locator("#inventory-table tbody tr td:nth-child(3)").all_inner_texts()
    assert len(sizes) == 6
    tab.accessible()
    tab.shot("keyboard-discover")
