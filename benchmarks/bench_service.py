"""The service under load: how fast it answers while a migration copies at full speed, and what the
load costs the copy.

One ``icebridge serve`` process on loopback migrates a table of many small files, one destination
commit per file (store and catalog writes all the way). The copy runs several times from a pristine
estate: alone, and while 50 clients poll ``GET /api/v1/runs/{id}`` every 0.5 s (each on its own
schedule, spread over the period, as independent browsers are) and 10 of them also open the run's
event stream again and again (each read for 2 s). The server carries the run out in a worker process
(``service.worker_mode: process``, the default); one loaded copy in ``thread`` mode (the run on a
thread of the server's own interpreter) is the reference measured in the same run. Reported:
requests/s and p50/p99 latency of the poll and of the stream (time to its first event), the copy's
throughput with and without the load, and how contended the machine's CPUs were meanwhile (the
kernel's CPU pressure, and how long the server's event loop and the clients were runnable but waited
for a CPU). Targets: the load costs the copy at most 10 %, p99 under 100 ms.
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
SERVICE = "service: {{poll_seconds: 0.25, worker_mode: {mode}}}"


@dataclass
class LoadStats:
    """What the clients saw."""

    seconds: float = 0.0
    polls: list[float] = field(default_factory=list)  # seconds per GET /runs/{id}
    streams: list[float] = field(default_factory=list)  # seconds to a stream's first event
    errors: list[str] = field(default_factory=list)

    def rate(self, samples: list[float]) -> float:
        return len(samples) / self.seconds if self.seconds else 0.0

    def add(self, other: LoadStats) -> None:
        self.seconds += other.seconds
        self.polls += other.polls
        self.streams += other.streams
        self.errors += other.errors


@dataclass
class Contention:
    """How busy the machine's CPUs were over a stretch of time, from the kernel's own counters."""

    seconds: float = 0.0
    pressure: float = 0.0  # seconds in which some runnable task waited for a CPU (PSI "some")
    server_waited: float = 0.0  # seconds the server's event loop thread was runnable but not running
    clients_waited: float = 0.0  # the same for this process (the clients' event loop)

    def add(self, other: Contention) -> None:
        self.seconds += other.seconds
        self.pressure += other.pressure
        self.server_waited += other.server_waited
        self.clients_waited += other.clients_waited

    def share(self, value: float) -> str:
        return f"{value / self.seconds * 100:.0f} %" if self.seconds else "n/a"


def _pressure_seconds() -> float:
    """Seconds (since boot) in which some runnable task waited for a CPU; 0 where the kernel has no PSI."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    total = dict(part.split("=", 1) for part in line.split()[1:]).get("total", "0")
    return int(total) / 1e6


def _waited_seconds(pid: int | str) -> float:
    """Seconds the main thread of ``pid`` spent runnable on a run queue, waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _counters(server: int) -> tuple[float, float, float, float]:
    return time.perf_counter(), _pressure_seconds(), _waited_seconds(server), _waited_seconds("self")


def _contention(server: int, since: tuple[float, float, float, float]) -> Contention:
    now = _counters(server)
    return Contention(*(b - a for a, b in zip(since, now, strict=True)))


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

        async def poller(n: int) -> None:
            # independent clients: each starts at its own point of the period and keeps to its own ticks,
            # rather than all 50 asking in the same millisecond every period
            tick = started + poll * n / clients
            while not over():
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
                tick += poll
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
                tick = max(
                    tick, time.perf_counter()
                )  # a late answer delays this client's next tick, never bunches them

        async def streamer(n: int) -> None:
            await asyncio.sleep(STREAM_SECONDS * n / streams)
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

        tasks = [poller(n) for n in range(clients)] + [streamer(n) for n in range(streams)]
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


@dataclass
class Copy:
    """One migration: how long it took, what it moved, what the clients saw and how busy the CPUs were."""

    seconds: float
    size: int
    stats: LoadStats | None
    contention: Contention


def _copy(pristine: Path, work: Path, name: str, loaded: bool, mode: str) -> Copy:
    """One migration from a fresh copy of the estate, its runs carried out in ``mode`` (process|thread)."""
    import httpx

    folder = work / name
    shutil.copytree(pristine, folder)
    config = folder / "icebridge.yaml"
    config.write_text(config.read_text().replace("service: {poll_seconds: 0.25}", SERVICE.format(mode=mode)))
    proc, url = _start(config, folder / "server.log")
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
        since = _counters(proc.pid)
        if loaded:
            stats = asyncio.run(load(url, TOKEN, run_id))
        while True:
            run = httpx.get(f"{url}/api/v1/runs/{run_id}", headers=headers, timeout=30).json()
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        contention = _contention(proc.pid, since)
        if run["status"] != "succeeded":
            raise BenchmarkError(f"the migration ended {run['status']}: {run}")
        table = run["tables"][0]
        return Copy(float(run["duration_seconds"]), int(table["bytes"]), stats, contention)
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
    # (loaded, mode): alone and loaded alternate, and so do the two modes, so drift and warm caches (and a
    # neighbour's load on a shared machine) hit each kind alike
    order = (
        [(False, "process"), (True, "process"), (True, "thread")]
        if quick
        else [
            (False, "process"),
            (True, "process"),
            (True, "thread"),
            (True, "thread"),
            (True, "process"),
            (False, "process"),
        ]
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-service-", dir=data_dir)).resolve()
    seconds: dict[str, list[float]] = {"alone": [], "process": [], "thread": []}
    stats = {"process": LoadStats(), "thread": LoadStats()}
    contention = {"alone": Contention(), "process": Contention(), "thread": Contention()}
    size = 0
    try:
        pristine = work / "pristine"
        build_estate(pristine, files, rows)
        for n, (loaded_round, mode) in enumerate(order):
            copy = _copy(pristine, work, f"copy-{n}", loaded_round, mode)
            key = mode if loaded_round else "alone"
            seconds[key].append(copy.seconds)
            contention[key].add(copy.contention)
            size = copy.size
            if copy.stats is not None:
                stats[mode].add(copy.stats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    errors = stats["process"].errors + stats["thread"].errors
    if errors:
        raise BenchmarkError(f"{len(errors)} failed requests under load, e.g. {errors[:3]}")
    alone = statistics.mean(seconds["alone"])
    cost = {mode: statistics.mean(seconds[mode]) / alone - 1 for mode in ("process", "thread")}

    def copy_row(label: str, mode: str, key: str) -> tuple[str, ...]:
        mean = statistics.mean(seconds[key])
        target = "-"
        if key == "process":
            target = f"≤ +{COST_TARGET * 100:.0f} %: {verdict(cost[key] <= COST_TARGET)}"
        elif key == "thread":
            target = "reference"
        return (
            label,
            mode,
            " / ".join(f"{x:.2f}" for x in seconds[key]),
            f"{size / 1024**2 / mean:.1f} MiB/s",
            f"{cost[key] * 100:+.1f} %" if key in cost else "-",
            target,
        )

    def answer_rows(mode: str) -> list[tuple[object, ...]]:
        seen = stats[mode]
        rows_: list[tuple[object, ...]] = []
        for what, samples in (
            ("`GET /api/v1/runs/{id}`", seen.polls),
            ("`GET /api/v1/runs/{id}/events` (to the first event)", seen.streams),
        ):
            p99 = percentile(samples, 0.99)
            ok = verdict(p99 < P99_TARGET_MS) if mode == "process" else "reference"
            rows_.append(
                (
                    what,
                    mode,
                    len(samples),
                    f"{seen.rate(samples):.1f}",
                    f"{percentile(samples, 0.5):.1f}",
                    f"{p99:.1f}",
                    ok,
                )
            )
        return rows_

    copies = [
        copy_row("alone", "process", "alone"),
        copy_row(f"under load ({CLIENTS} clients)", "process", "process"),
        copy_row(f"under load ({CLIENTS} clients)", "thread", "thread"),
    ]
    answers = answer_rows("process") + answer_rows("thread")
    busy = [
        (
            label,
            f"{contention[key].seconds:.0f}",
            contention[key].share(contention[key].pressure),
            contention[key].share(contention[key].server_waited),
            contention[key].share(contention[key].clients_waited) if key != "alone" else "-",
        )
        for label, key in (("alone", "alone"), ("loaded, process", "process"), ("loaded, thread", "thread"))
    ]
    return (
        "## Service under load\n\n"
        f"One `icebridge serve` on loopback migrates a table of {files} files ({fmt_bytes(size)}), one commit per "
        f"file. Under load, {CLIENTS} clients poll the run every {POLL_SECONDS} s (each on its own schedule, spread "
        f"over the period) and {STREAMS} of them re-open its event stream every {STREAM_SECONDS:.0f} s, for the whole "
        "copy; no request failed. Copy time is the run's duration (planning excluded: the plan is saved first). "
        "The run is carried out by a worker process of the server (`service.worker_mode: process`, the default); "
        "the thread-mode copy (the run on a thread of the server's own interpreter, as before) is the reference, "
        "measured in the same session.\n\n"
        + f"Copies in order: {', '.join(('loaded ' + m) if x else 'alone' for x, m in order)}; throughput and cost "
        "are from the mean of each kind.\n\n"
        + md_table(["copy", "worker mode", "seconds (each copy)", "throughput", "cost of the load", "target"], copies)
        + "\n\n"
        + md_table(["request", "worker mode", "answers", "per s", "p50 ms", "p99 ms", "p99 < 100 ms"], answers)
        + "\n\nHow contended the CPUs were during the copies (the kernel's counters): *pressure* is the share of the "
        "time in which some runnable task waited for a CPU (PSI `some`); *server waited* and *clients waited* the "
        "share in which the server's event loop thread, or the clients' (this process), was ready to run but had "
        "no CPU — time that every answer measured above includes.\n\n"
        + md_table(["copies", "seconds", "CPU pressure", "server waited", "clients waited"], busy)
    )
