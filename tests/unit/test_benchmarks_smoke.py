"""``python -m benchmarks.run --quick`` on tiny data: every section is written, with numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "benchmarks" / "RESULTS.md"
NUMBER = r"\d+(?:\.\d+)?"


def _section(text: str, heading: str) -> str:
    start = text.find(f"\n## {heading}")
    assert start >= 0, f"section '## {heading}' missing from the results:\n{text}"
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _row(section: str, label: str) -> str:
    rows = [line for line in section.splitlines() if line.startswith("|") and f" {label} |" in line]
    assert rows, f"no table row for {label!r} in:\n{section}"
    return rows[0]


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_run_writes_every_section_with_numbers(tmp_path: Path, pg_server: str) -> None:
    before = COMMITTED.read_bytes() if COMMITTED.exists() else None
    output = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--data-dir",
            str(tmp_path / "data"),
            "--output",
            str(output),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"benchmarks failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    text = output.read_text()
    assert "FAILED" not in text, text

    machine = _section(text, "Machine")
    assert re.search(rf"CPU: .+, {NUMBER} cores", machine), machine
    assert re.search(r"pyiceberg \d", machine), machine

    copy = _section(text, "Copy")
    for method in ("cp -r", "icebridge rewrite", "notebook"):
        assert re.search(rf"{NUMBER} MiB/s", _row(copy, method)), f"no throughput for {method}:\n{copy}"
    file_copy = _row(copy, "icebridge file-copy")
    assert re.search(rf"{NUMBER} MiB/s", file_copy) or "**" in file_copy, file_copy  # a number or a stated error
    assert re.search(rf"\| rewrite vs notebook \(L\) \| {NUMBER}×", copy), copy
    data_row = rf"^\| L \| {NUMBER} \| [\d,]+ \| [\d,]+ \| {NUMBER} (KiB|MiB|GiB) \|"
    assert re.search(data_row, copy, re.MULTILINE), f"no size for the generated table:\n{copy}"

    commits = _section(text, "Commit-rate")
    for backend in ("SQLite", "PostgreSQL"):
        for tables in ("one table", "a table each"):
            row = _row(commits, f"{backend} | {tables} | 2")
            assert re.search(rf"\| 2 \| {NUMBER} \| {NUMBER}% \|", row), row
    assert "Verdict" in commits

    control = _section(text, "Control plane")
    row = _row(control, "**inventory + plan**")
    assert re.search(rf"\*\*{NUMBER} s\*\*", row) and re.search(rf"{NUMBER} (MiB|GiB)", row), row

    overhead = _section(text, "Fixed overhead")
    for command in ("icebridge status", "icebridge migrate"):
        row = next((line for line in overhead.splitlines() if line.startswith(f"| `{command}`")), "")
        assert re.search(rf"\| {NUMBER} \| {NUMBER}× \|", row), overhead

    service = _section(text, "Service under load")
    for request in ("`GET /api/v1/runs/{id}`", "`GET /api/v1/runs/{id}/events` (to the first event)"):
        row = _row(service, request)
        assert re.search(rf"\| \d+ \| {NUMBER} \| {NUMBER} \| {NUMBER} \|", row), row
    for copy in ("alone", "under load (50 clients)"):
        assert re.search(rf"{NUMBER} MiB/s", _row(service, copy)), service

    after = COMMITTED.read_bytes() if COMMITTED.exists() else None
    assert after == before, "the quick run must not touch the committed benchmarks/RESULTS.md"


def test_only_replaces_its_sections_and_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import run

    output = tmp_path / "RESULTS.md"
    monkeypatch.setattr(run, "discover", lambda: ["copy", "commits", "overhead"])
    monkeypatch.setattr(run, "run_one", lambda name, _dir, _quick: (f"## {name} section\n\nfirst {name}", True))
    assert run.main(["--output", str(output), "--data-dir", str(tmp_path / "data")]) == 0
    monkeypatch.setattr(run, "run_one", lambda name, _dir, _quick: (f"## {name} section\n\nsecond {name}", True))
    assert run.main(["--only", "commits", "--output", str(output), "--data-dir", str(tmp_path / "data")]) == 0

    text = output.read_text()
    assert "first copy" in text and "first overhead" in text, text
    assert "second commits" in text and "first commits" not in text, text
    assert text.index("copy section") < text.index("commits section") < text.index("overhead section"), text
