"""The service under load: how fast it answers while a migration copies at full speed, and what the
load costs the copy.

One ``icebridge serve`` process on loopback migrates a table of many small files, one destination
commit per file (store and catalog writes all the way). The copy runs twice from a pristine estate:
alone, then while 50 clients poll ``GET /api/v1/runs/{id}`` every 0.5 s and 10 of them also open the
run's event stream again and again (each read for 2 s). Reported: requests/s and p50/p99 latency of
the poll and of the stream (time to its first event), and the copy's throughput with and without the
load. Targets: the load costs the copy at most 10 %, p99 under 100 ms.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import REPO_ROOT, BenchmarkError, fmt_bytes, md_table, verdict

TOKEN = "bench-token-0123456789abcdef"
CLIENTS = 50
STREAMS = 10
POLL_SECONDS = 0.5
STREAM_SECONDS = 2.0
COST_TARGET = 0.10
P99_TARGET_MS = 100.0


@dataclass
class LoadStats:
    """What the clients saw."""

    seconds: float = 0.0
    polls: list[float] = field(default_factory=list)  # seconds per GET /runs/{id}
    streams: list[float] = field(default_factory=list)  # seconds to a stream's first event
    errors: list[str] = field(default_factory=list)

    def rate(self, samples: list[float]) -> float:
        return len(samples) / self.seconds if self.seconds else 0.0


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` in milliseconds (nearest rank)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000


async def load(
    base_url: str,
    token: str,
    run_id: int,
    clients: int = CLIENTS,
    streams: int = STREAMS,
    poll: float = POLL_SECONDS,
    seconds: float | None = None,
) -> LoadStats:
    """``clients`` pollers (``streams`` of them also re-opening the event stream) until ``seconds`` have
    passed, or — without ``seconds`` — until the run has ended. Bounded: loopback only, stops by itself."""
    import httpx

    stats = LoadStats()
    started = time.perf_counter()
    done = asyncio.Event()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)

    def over() -> bool:
        return done.is_set() or (seconds is not None and time.perf_counter() - started >= seconds)

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=limits) as client:

        async def poller() -> None:
            while not over():
                t0 = time.perf_counter()
                try:
                    answer = await client.get(f"/api/v1/runs/{run_id}")
                    stats.polls.append(time.perf_counter() - t0)
                    if answer.status_code != 200:
                        stats.errors.append(f"GET /runs/{run_id}: {answer.status_code}")
                    elif seconds is None and answer.json()["status"] not in ("queued", "running"):
                        done.set()
                except httpx.HTTPError as exc:
                    stats.errors.append(f"GET /runs/{run_id}: {type(exc).__name__}")
                await asyncio.sleep(poll)

        async def streamer() -> None:
            while not over():
                t0 = time.perf_counter()
                first = True
                try:
                    async with client.stream("GET", f"/api/v1/runs/{run_id}/events") as answer:
                        if answer.status_code != 200:
                            stats.errors.append(f"GET /runs/{run_id}/events: {answer.status_code}")
                            await asyncio.sleep(poll)
                            continue
                        async for line in answer.aiter_lines():
                            if first and line.startswith("data: "):
                                stats.streams.append(time.perf_counter() - t0)
                                first = False
                            if time.perf_counter() - t0 >= STREAM_SECONDS or over():
                                break
                except httpx.HTTPError as exc:
                    stats.errors.append(f"GET /runs/{run_id}/events: {type(exc).__name__}")
                # a stream that ended early (the run is over) is opened again only after its 2 s
                await asyncio.sleep(max(0.0, STREAM_SECONDS - (time.perf_counter() - t0)))

        tasks = [poller() for _ in range(clients)] + [streamer() for _ in range(streams)]
        await asyncio.gather(*tasks)
    stats.seconds = time.perf_counter() - started
    return stats


# ------------------------------------------------------------------------------------------ estate


def build_estate(root: Path, files: int, rows: int) -> Path:
    """A source table of ``files`` Parquet files in a SQL catalog on SQLite, and its icebridge.yaml."""
    import numpy as np
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    (root / "foreign-warehouse").mkdir(parents=True)
    catalog = SqlCatalog("foreign", uri=f"sqlite:///{root}/foreign.db", warehouse=f"file://{root}/foreign-warehouse")
    catalog.create_namespace("shop")
    rng = np.random.default_rng(11)
    table = None
    for n in range(files):
        data = pa.table(
            {
                "id": pa.array(np.arange(n * rows, (n + 1) * rows), pa.int64()),
                "amount": pa.array(rng.random(rows)),
                "label": pa.array([f"item-{i % 5000}" for i in range(rows)], pa.string()),
            }
        )
        table = table or catalog.create_table("shop.orders", data.schema)
        table.append(data)
    config = root / "icebridge.yaml"
    config.write_text(
        "catalogs:\n"
        f'  foreign: {{type: sql, uri: "sqlite:///{root}/foreign.db", warehouse: "file://{root}/foreign-warehouse"}}\n'
        f'  managed: {{type: sql, uri: "sqlite:///{root}/managed.db", warehouse: "file://{root}/managed-warehouse"}}\n'
        "mappings:\n"
        "  - {source: foreign.shop.*, target: managed.shop}\n"
        "migrate: {files_per_commit: 1}\n"
        "service: {poll_seconds: 0.25}\n"
    )
    return config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    env = {**os.environ, "ICEBRIDGE_API_TOKEN": TOKEN, "PYTHONPATH": str(REPO_ROOT / "src")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "icebridge", "serve", "-c", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise BenchmarkError(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).is_success:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _copy(pristine: Path, work: Path, name: str, loaded: bool) -> tuple[float, int, LoadStats | None]:
    """One migration from a fresh copy of the estate: (seconds, bytes, what the clients saw)."""
    import httpx

    folder = work / name
    shutil.copytree(pristine, folder)
    proc, url = _start(folder / "icebridge.yaml", folder / "server.log")
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        # plan first, so both copies measure the migration from the same starting point
        if httpx.post(f"{url}/api/v1/plans", json={}, headers=headers, timeout=300).status_code != 200:
            raise BenchmarkError("plan failed")
        accepted = httpx.post(f"{url}/api/v1/runs", json={"command": "migrate"}, headers=headers, timeout=300)
        if accepted.status_code != 202:
            raise BenchmarkError(f"migrate not accepted: {accepted.text}")
        run_id = accepted.json()["id"]
        stats = None
        if loaded:
            stats = asyncio.run(load(url, TOKEN, run_id))
        while True:
            run = httpx.get(f"{url}/api/v1/runs/{run_id}", headers=headers, timeout=30).json()
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        if run["status"] != "succeeded":
            raise BenchmarkError(f"the migration ended {run['status']}: {run}")
        table = run["tables"][0]
        return float(run["duration_seconds"]), int(table["bytes"]), stats
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(data_dir: Path, quick: bool) -> str:
    """Markdown: the copy alone and under load, and what the clients saw."""
    files, rows = (40, 2_000) if quick else (300, 20_000)
    # alone and loaded alternate (A L, then L A), so drift and warm caches hit both alike
    order = [False, True] if quick else [False, True, True, False]
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-service-", dir=data_dir)).resolve()
    alone_s: list[float] = []
    loaded_s: list[float] = []
    stats = LoadStats()
    try:
        pristine = work / "pristine"
        build_estate(pristine, files, rows)
        for n, loaded_round in enumerate(order):
            seconds, size, seen = _copy(pristine, work, f"copy-{n}", loaded=loaded_round)
            (loaded_s if loaded_round else alone_s).append(seconds)
            if seen is not None:
                stats.seconds += seen.seconds
                stats.polls += seen.polls
                stats.streams += seen.streams
                stats.errors += seen.errors
    finally:
        shutil.rmtree(work, ignore_errors=True)
    alone, loaded = statistics.mean(alone_s), statistics.mean(loaded_s)
    if stats.errors:
        raise BenchmarkError(f"{len(stats.errors)} failed requests under load, e.g. {stats.errors[:3]}")
    cost = loaded / alone - 1
    p99_poll, p99_stream = percentile(stats.polls, 0.99), percentile(stats.streams, 0.99)
    copies = [
        ("alone", " / ".join(f"{x:.2f}" for x in alone_s), f"{size / 1024**2 / alone:.1f} MiB/s", "-", "-"),
        (
            f"under load ({CLIENTS} clients)",
            " / ".join(f"{x:.2f}" for x in loaded_s),
            f"{size / 1024**2 / loaded:.1f} MiB/s",
            f"{cost * 100:+.1f} %",
            f"≤ +{COST_TARGET * 100:.0f} %: {verdict(cost <= COST_TARGET)}",
        ),
    ]
    answers = [
        (
            "`GET /api/v1/runs/{id}`",
            len(stats.polls),
            f"{stats.rate(stats.polls):.1f}",
            f"{percentile(stats.polls, 0.5):.1f}",
            f"{p99_poll:.1f}",
            verdict(p99_poll < P99_TARGET_MS),
        ),
        (
            "`GET /api/v1/runs/{id}/events` (to the first event)",
            len(stats.streams),
            f"{stats.rate(stats.streams):.1f}",
            f"{percentile(stats.streams, 0.5):.1f}",
            f"{p99_stream:.1f}",
            verdict(p99_stream < P99_TARGET_MS),
        ),
    ]
    return (
        "## Service under load\n\n"
        f"One `icebridge serve` on loopback migrates a table of {files} files ({fmt_bytes(size)}), one commit per "
        f"file. Under load, {CLIENTS} clients poll the run every {POLL_SECONDS} s and {STREAMS} of them re-open its "
        f"event stream every {STREAM_SECONDS:.0f} s, for the whole copy ({stats.seconds:.0f} s); no request "
        "failed. Copy time is the run's duration (planning excluded: the plan is saved first).\n\n"
        + f"Copies alternate ({', '.join('loaded' if x else 'alone' for x in order)}); throughput and cost are from "
        "the mean of each.\n\n"
        + md_table(["copy", "seconds (each copy)", "throughput", "cost of the load", "target"], copies)
        + "\n\n"
        + md_table(["request", "answers", "per s", "p50 ms", "p99 ms", "p99 < 100 ms"], answers)
        + f"\n\n{statistics.median(stats.polls) * 1000:.1f} ms median poll; the streams were answered by the "
        "server's own event hub (the run is carried out in that process)."
    )
