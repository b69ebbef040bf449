"""The terminal progress of migrate, validate and cut-over: every table's bar fills, bytes and files done
against the total, with throughput, and says how the table ended."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from icebridge.app.runs import RunRequest, RunService
from icebridge.cli.progress import TerminalProgress
from icebridge.config import load_config
from icebridge.context import AppContext
from tests.integration.test_behaviour import SOURCES, Estate, make_estate

WITH_DATA = [s for s in SOURCES if s != "shop.empty"]


@pytest.fixture
def sqlite_estate(tmp_path: Path) -> Estate:
    return make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )


def shown(ctx: AppContext, command: str) -> str:
    """What a terminal shows at the end of ``command``: the last frame of every bar."""
    # not a terminal: the bars are drawn once, as they stand at the end (a terminal shows that last frame)
    console = Console(record=True, force_terminal=False, width=220, color_system=None)
    with TerminalProgress(console) as progress:
        unsubscribe = ctx.bus.subscribe(progress)
        try:
            result = RunService(ctx).run(RunRequest(command=command))  # type: ignore[arg-type]
        finally:
            unsubscribe()
    assert result.status == "succeeded", result
    return console.export_text()


def last_line(screen: str, table: str) -> str:
    lines = [line for line in screen.splitlines() if f"foreign.{table} " in line]
    assert lines, f"no bar for {table}:\n{screen}"
    return lines[-1]


@pytest.mark.parametrize("command", ["migrate", "validate", "cutover"])
def test_every_bar_fills_with_bytes_files_and_throughput(sqlite_estate: Estate, command: str) -> None:
    ctx = AppContext(load_config(sqlite_estate.config))
    try:
        for before in ("migrate", "validate", "cutover")[: ("migrate", "validate", "cutover").index(command)]:
            assert RunService(ctx).run(RunRequest(command=before)).status == "succeeded"  # type: ignore[arg-type]
        screen = shown(ctx, command)
    finally:
        ctx.close()
    for table in WITH_DATA:
        line = last_line(screen, table)
        done = re.search(r"(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?) (KiB|MiB|GiB|bytes)", line)
        assert done and done.group(1) == done.group(2) and float(done.group(2)) > 0, line
        files = re.search(r"(\d+)/(\d+) files", line)
        assert files and files.group(1) == files.group(2) and int(files.group(2)) > 0, line
        assert re.search(r"\d+(\.\d+)? (B|KiB|MiB|GiB)/s", line), line
        assert "succeeded" in line, line
