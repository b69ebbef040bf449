"""The wizard in a real browser: Debian's Chromium driven by Playwright against ``icebridge serve``.

Each test starts the server as a subprocess (as ``tests/api`` does) and opens pages on it; screenshots
go to ``build/test-artifacts/browser/<test>/``. axe-core, installed by ``scripts/ensure-browser.sh``
into ``build/npm``, is injected into the pages to check accessibility.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import TOKEN, Server, start_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "build" / "test-artifacts" / "browser"
ENSURE = "bash scripts/ensure-browser.sh"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One Chromium for the session (Debian's: a browser download is impossible here)."""
    if not CHROMIUM.exists() or not AXE.exists():
        pytest.fail(f"the browser tests need {CHROMIUM} and {AXE}: run `{ENSURE}` first", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's folder of screenshots, emptied first."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class Wizard:
    """One tab of the wizard: sign in, go to a step, check accessibility, take a screenshot."""

    def __init__(self, page: Any, server: Server, artifacts: Path) -> None:
        self.page = page
        self.server = server
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        self.shots = 0

    def _console(self, message: Any) -> None:
        # a refused request (a wrong token on purpose, a 409) is logged by the browser itself; what the
        # page makes of it is asserted by the tests
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, step: str = "") -> None:
        self.page.goto(f"{self.server.url}/#/{step}")

    def sign_in(self, token: str = TOKEN) -> None:
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()

    def step(self, name: str) -> None:
        """Go to a step through its link in the steps' navigation, as a person would."""
        self.page.get_by_role("navigation", name="Migration steps").get_by_role("link", name=name).click()
        self.page.get_by_role("heading", level=1, name=name).wait_for()

    def shot(self, name: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2 A and AA violations on the page as it is now."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        self.page.evaluate("() => { window.WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']; }")
        violations: list[dict[str, Any]] = self.page.evaluate(
            """async () => (await axe.run(document, {runOnly: {type: 'tag', values: WCAG}}))
                 .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"""
        )
        return violations

    def accessible(self) -> None:
        violations = self.axe()
        assert violations == [], violations


@pytest.fixture
def wizard(browser: Any, artifacts: Path) -> Iterator[Any]:
    """``wizard(server)``: a new tab (own browser context: own sessionStorage) on ``server``."""
    contexts: list[Any] = []
    tabs: list[Wizard] = []

    def open_tab(server: Server) -> Wizard:
        # the page's own policy forbids injected scripts; axe is injected by the test, not the page
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        contexts.append(context)
        tab = Wizard(context.new_page(), server, artifacts)
        tabs.append(tab)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    for tab in tabs:
        assert tab.errors == [], tab.errors
        assert tab.dialogs == [], tab.dialogs


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start ``icebridge serve`` on a configuration; stopped at the end of the test."""
    started: list[Server] = []

    def start(config: Path, *args: str) -> Server:
        server = start_server(config, tmp_path / f"server-{len(started)}.log", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
