"""Prometheus: a real Prometheus scrapes the server during a migration and the metric is read back
through its query API; a CLI migrate pushes to a real Pushgateway. Debian's binaries, started here on
free loopback ports with temporary configuration and data folders."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from icebridge.store import open_store
from tests.api.conftest import SRC, TOKEN, free_port, wait_for_run
from tests.integration.test_behaviour import Estate, make_estate

ENSURE = Path(__file__).resolve().parents[2] / "scripts" / "ensure-prometheus.sh"


@pytest.fixture(scope="session")
def prometheus_installed() -> None:
    """Install Debian's prometheus and prometheus-pushgateway where missing (fails, never skips)."""
    result = subprocess.run(["bash", str(ENSURE)], capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        pytest.fail(f"{ENSURE} failed:\n{result.stdout}\n{result.stderr}", pytrace=False)


def _start(cmd: list[str], log: Path, ready: str) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"{cmd[0]} exited:\n{log.read_text()}"
        try:
            if httpx.get(ready).is_success:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{cmd[0]} did not become ready:\n{log.read_text()}"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def estate(tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    return make_estate(tmp_path, backend, big_files=20, files_per_commit=2)


def copied_bytes(est: Estate, run_id: int) -> int:
    store = open_store(est.state_url)
    try:
        return sum(size for _files, _rows, size in store.run_progress(run_id).values())
    finally:
        store.close()


def test_prometheus_scrapes_the_server_during_a_migration(
    estate: Estate, serve: Any, tmp_path: Path, prometheus_installed: None
) -> None:
    settings = yaml.safe_load(estate.config.read_text())
    settings["service"] = {"lag_interval_seconds": 1}
    estate.config.write_text(yaml.safe_dump(settings))
    server = serve(estate.config)
    port = free_port()
    (tmp_path / "token").write_text(TOKEN)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "icebridge",
                "authorization": {"credentials_file": str(tmp_path / "token")},
                "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = _start(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    try:
        client = server.client()
        run = client.post("/api/v1/runs", json={"command": "migrate"}).json()
        assert wait_for_run(client, run["id"])["status"] == "succeeded"
        expected = copied_bytes(estate, run["id"])
        assert expected > 0

        def query(expr: str) -> list[dict[str, Any]]:
            answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expr}).json()
            assert answer["status"] == "success", answer
            return answer["data"]["result"]  # type: ignore[no-any-return]

        def eventually(expr: str, value: float) -> list[dict[str, Any]]:
            """The query's answer once its first sample holds ``value`` (samples lag the run by a scrape)."""
            deadline = time.monotonic() + 30
            while True:
                found = query(expr)
                if found and float(found[0]["value"][1]) == value:
                    return found
                assert time.monotonic() < deadline, f"Prometheus did not read {value} for {expr}: {found}"
                time.sleep(0.5)

        eventually('icebridge_copied_bytes_total{job="icebridge"}', expected)
        eventually('icebridge_tasks{phase="migrated",status="succeeded"}', 6.0)
        eventually('icebridge_runs_finished_total{command="migrate",status="succeeded"}', 1.0)
        lag = eventually("max(icebridge_sync_lag_snapshots)", 0.0)  # nothing changed at the sources
        assert lag
    finally:
        _stop(prom)


def _migrate(est: Estate, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icebridge", "migrate", "-c", str(est.config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
    )


@pytest.fixture
def pushgateway(tmp_path: Path, prometheus_installed: None) -> Iterator[str]:
    port = free_port()
    proc = _start(
        [
            "prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.data'}",  # Debian's default is a shared file
        ],
        tmp_path / "pushgateway.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def test_a_cli_migrate_pushes_its_metrics_to_the_pushgateway(estate: Estate, pushgateway: str) -> None:
    done = _migrate(estate, {"ICEBRIDGE_PUSHGATEWAY": pushgateway})
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    store = open_store(estate.state_url)
    try:
        run = next(r for r in store.list_runs() if r.kind == "migrate")
    finally:
        store.close()
    expected = copied_bytes(estate, run.id)
    lines = httpx.get(f"{pushgateway}/metrics").text.splitlines()
    pushed = [line for line in lines if line.startswith("icebridge_copied_bytes_total{")]
    assert pushed, "\n".join(lines[:50])
    assert 'command="migrate"' in pushed[0] and 'job="icebridge"' in pushed[0]
    assert float(pushed[0].rsplit(" ", 1)[1]) == expected


def test_a_push_that_fails_is_one_warning_and_the_command_succeeds(tmp_path: Path) -> None:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend)
    done = _migrate(est, {"ICEBRIDGE_PUSHGATEWAY": f"http://127.0.0.1:{free_port()}"})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "Pushgateway" in warnings[0], done.stderr
