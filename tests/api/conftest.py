"""The service through a real HTTP server: ``icebridge serve`` in a subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TOKEN = "test-token-0123456789abcdef"
SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One ``icebridge serve`` process and how to talk to it."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    token: str = TOKEN
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}", **(headers or {})}, timeout=60
        )
        self.clients.append(client)
        return client

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 90) -> int:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(config: Path, log: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True) -> Server:
    """Start ``icebridge serve`` on a free port and wait until it answers."""
    port = free_port()
    environ = {**os.environ, "ICEBRIDGE_API_TOKEN": TOKEN, "PYTHONPATH": str(SRC), **(env or {})}
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "icebridge", "serve", "-c", str(config), "--port", str(port), *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=environ,
    )
    out.close()
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    if wait:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the server exited ({proc.returncode}):\n{server.log_text()}"
            try:
                if httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not answer within 60 s:\n{server.log_text()}"
            time.sleep(0.1)
    return server


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start servers for a test (``serve(config, *args)``); every one is stopped at the end."""
    started: list[Server] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None, log: str = "server.log") -> Server:
        server = start_server(config, tmp_path / log, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for_run(client: httpx.Client, run_id: int, timeout: float = 300) -> dict[str, Any]:
    """Poll ``GET /api/v1/runs/{id}`` until the run has ended; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/v1/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout} s"
        time.sleep(0.2)


def sse_events(client: httpx.Client, run_id: int, timeout: float = 300) -> list[tuple[str, dict[str, Any]]]:
    """Read a run's event stream to its end: (event name, data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/v1/runs/{run_id}/events", timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and data:
                events.append((name, json.loads(data)))
                name, data = "message", ""
    return events
