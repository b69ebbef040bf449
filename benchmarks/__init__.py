"""IceBridge benchmarks: ``python -m benchmarks.run`` measures and writes ``benchmarks/RESULTS.md``.

Shared helpers live here: running a command while watching its memory, a sampling profiler that sees
every thread, and Markdown formatting.
"""

from __future__ import annotations

import collections
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
MIB = 1024**2
#: Numbers one benchmark measured that a later one in the same run uses (e.g. copy speed for the commit maths).
SHARED: dict[str, float] = {}


class BenchmarkError(Exception):
    """A benchmark could not complete; ``partial`` is the Markdown it measured before stopping."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


# ------------------------------------------------------------------------------------------ formatting


def fmt_bytes(n: float | None) -> str:
    """``n`` bytes in binary units (``1.50 GiB``)."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"


def fmt_rate(n_bytes: float, seconds: float | None) -> str:
    """Throughput in MiB/s, or ``n/a`` when the time is unknown."""
    if not seconds or seconds <= 0:
        return "n/a"
    return f"{n_bytes / MIB / seconds:.1f} MiB/s"


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``2.35×`` (``n/a`` when unknown)."""
    return "n/a" if value is None else f"{value:.2f}×"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    """The word used for a target in RESULTS.md."""
    if ok is None:
        return "not measured"
    return "met" if ok else "**NOT met**"


# --------------------------------------------------------------------------------- measured processes


@dataclass
class ProcessResult:
    """How a measured command ended: exit code, wall time, peak RSS and an RSS timeline."""

    cmd: list[str]
    returncode: int
    seconds: float
    peak_rss: int
    stdout: str
    stderr: str
    capped: bool = False
    started_at: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (epoch seconds, RSS bytes)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.capped

    def peak_between(self, start: float, end: float) -> int | None:
        """Highest sampled RSS between two epoch times (None if no sample fell in between)."""
        inside = [rss for ts, rss in self.samples if start <= ts <= end]
        return max(inside) if inside else None

    def tail(self, lines: int = 8) -> str:
        """The last lines of stderr (or stdout), for error messages."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


def _memory_of(pid: int) -> tuple[int, int] | None:
    """(current RSS, peak RSS) of a live process from /proc, None once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return rss, hwm


def run_measured(
    cmd: Sequence[str],
    *,
    cap_bytes: int | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    interval: float = 0.1,
) -> ProcessResult:
    """Run ``cmd`` to its end, sampling its RSS; kill it if its RSS passes ``cap_bytes``.

    The peak is the kernel's high-water mark of the process (``VmHWM``), so a spike between two samples
    is not missed (only one in the last ``interval`` before exit could be). ``wait4``'s ``ru_maxrss`` is not
    used: it starts from the parent's RSS at fork. The RSS samples place memory in time (copy vs validation).
    """
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    started_at = time.time()
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd)
    samples: list[tuple[float, int]] = []
    high_water = [0]
    capped = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            memory = _memory_of(proc.pid)
            if memory is None:
                return
            rss, hwm = memory
            if rss == 0 and hwm == 0:  # a zombie waiting to be reaped: its numbers are gone
                return
            samples.append((time.time(), rss))
            high_water[0] = max(high_water[0], hwm)
            if cap_bytes is not None and rss > cap_bytes and not capped.is_set():
                capped.set()
                proc.kill()
            done.wait(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _pid, status = os.waitpid(proc.pid, 0)
    seconds = time.monotonic() - t0
    done.set()
    watcher.join()
    # reaped by waitpid above: tell Popen so it never waits on a recycled pid
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    peak = max([high_water[0]] + [rss for _ts, rss in samples])
    result = ProcessResult(
        cmd=list(cmd),
        returncode=proc.returncode,
        seconds=seconds,
        peak_rss=peak,
        stdout=out.read(),
        stderr=err.read(),
        capped=capped.is_set(),
        started_at=started_at,
        samples=samples,
    )
    out.close()
    err.close()
    return result


def python_cmd(*args: str) -> list[str]:
    """A command running this interpreter (the venv's) with ``args``."""
    return [sys.executable, *args]


def bench_env() -> dict[str, str]:
    """The environment for benchmark subprocesses: this one, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def sync_disks() -> float:
    """Flush dirty pages to disk (``sync``); return the seconds it took."""
    t0 = time.monotonic()
    os.sync()
    return time.monotonic() - t0


# ----------------------------------------------------------------------------------- sampling profiler


class StackSampler:
    """A sampling profiler over every thread (cProfile sees only the thread that started it).

    Every ``interval`` it records the Python stack of each busy thread and, once PyArrow is loaded, the bytes
    held by Arrow's memory pool. A function's *inclusive* share is the fraction of thread samples with it
    anywhere on the stack, its *own* share the fraction with it on top. Native work (Arrow, DuckDB, file I/O)
    is charged to the Python function that called into it. Reports can be cut to a time window.
    """

    IDLE = frozenset({"wait", "_wait_for_tstate_lock", "select", "poll", "get", "_worker", "sleep", "acquire"})
    GENERIC = ("threading.py:", "concurrent/futures/", "runpy.py:", "<frozen runpy>:", "<string>:", "typer/")

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.labels: list[str] = []
        self._ids: dict[str, int] = {}
        # (epoch seconds, Arrow pool bytes, one stack per busy thread: label ids, innermost first)
        self.ticks: list[tuple[float, int, list[list[int]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="stack-sampler")

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _id(self, frame: FrameType) -> int:
        code = frame.f_code
        path = code.co_filename
        if path.startswith(str(REPO_ROOT)):
            path = path[len(str(REPO_ROOT)) + 1 :]
        for marker in ("site-packages/", "/lib/python3."):
            if marker in path:
                path = path.split(marker, 1)[1]
                if marker == "/lib/python3.":
                    path = path.split("/", 1)[-1]
                break
        label = f"{path}:{code.co_name}"
        found = self._ids.get(label)
        if found is None:
            found = self._ids[label] = len(self.labels)
            self.labels.append(label)
        return found

    def _loop(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            # pyarrow may be half-imported at this instant (its attributes not there yet)
            allocated = getattr(sys.modules.get("pyarrow"), "total_allocated_bytes", None)
            try:
                pool = int(allocated()) if callable(allocated) else 0
            except Exception:
                pool = 0
            stacks: list[list[int]] = []
            # CPython 3.11 may run a garbage collection inside sys._current_frames while it holds the lock
            # of the thread list, and a finalizer that needs that lock then hangs the process for good
            collecting = gc.isenabled()
            gc.disable()
            try:
                frames = sys._current_frames()
            finally:
                if collecting:
                    gc.enable()
            for ident, frame in frames.items():
                if ident == me or frame.f_code.co_name in self.IDLE:
                    continue
                stack: list[int] = []
                walker: FrameType | None = frame
                while walker is not None:
                    stack.append(self._id(walker))
                    walker = walker.f_back
                stacks.append(stack)
            self.ticks.append((time.time(), pool, stacks))

    def to_json(self) -> dict[str, object]:
        """Everything recorded, for another process to report on (see :meth:`from_json`)."""
        return {"interval": self.interval, "labels": self.labels, "ticks": self.ticks}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackSampler:
        """A sampler holding what :meth:`to_json` wrote."""
        sampler = cls(float(data["interval"]))
        sampler.labels = list(data["labels"])
        sampler.ticks = [(float(t), int(p), [list(s) for s in stacks]) for t, p, stacks in data["ticks"]]
        return sampler

    def _window(self, start: float | None, end: float | None) -> list[tuple[float, int, list[list[int]]]]:
        return [t for t in self.ticks if (start is None or t[0] >= start) and (end is None or t[0] <= end)]

    def report(self, n: int = 15, start: float | None = None, end: float | None = None) -> str:
        """Markdown: functions by inclusive share, then by own share, within ``[start, end]`` (epoch seconds)."""
        ticks = self._window(start, end)
        stacks = [stack for _ts, _pool, per_thread in ticks for stack in per_thread]
        if not stacks:
            return "(no stack samples in that window)"
        inclusive: collections.Counter[int] = collections.Counter()
        own: collections.Counter[int] = collections.Counter()
        for stack in stacks:
            own[stack[0]] += 1
            inclusive.update(set(stack))
        total = len(stacks)
        ranked = [
            (label_id, count)
            for label_id, count in inclusive.most_common()
            if not self.labels[label_id].startswith(self.GENERIC) and count < 0.98 * total
        ][:n]
        rows_inclusive = [
            (f"`{self.labels[i]}`", f"{100 * c / total:.1f}%", f"{100 * own[i] / total:.1f}%") for i, c in ranked
        ]
        rows_own = [(f"`{self.labels[i]}`", f"{100 * c / total:.1f}%") for i, c in own.most_common(n)]
        seconds = ticks[-1][0] - ticks[0][0] if len(ticks) > 1 else 0.0
        return (
            f"{total} thread samples over {seconds:.0f} s (every {self.interval * 1000:.0f} ms). Native work"
            " (Arrow, DuckDB, Avro, I/O) is charged to the Python function that called it.\n\n"
            + md_table(["function (inclusive)", "inclusive", "own"], rows_inclusive)
            + "\n\n"
            + md_table(["function (own time, top of stack)", "own"], rows_own)
        )

    def memory_report(self, start: float | None = None, end: float | None = None, frames: int = 6) -> str:
        """Markdown: the Arrow memory pool's peak in the window and what each thread was doing then."""
        ticks = self._window(start, end)
        if not ticks or not any(pool for _ts, pool, _stacks in ticks):
            return "(Arrow's memory pool was not sampled in that window)"
        ts, pool, stacks = max(ticks, key=lambda t: t[1])
        pools = sorted(p for _t, p, _s in ticks)
        lines = [
            f"Arrow memory pool: peak {fmt_bytes(pool)} ({ts - ticks[0][0]:.0f} s into the window), median"
            f" {fmt_bytes(pools[len(pools) // 2])}. Threads at the peak (innermost frame first):",
            "",
        ]
        for stack in stacks:
            shown = [self.labels[i] for i in stack if not self.labels[i].startswith(self.GENERIC)][:frames]
            lines.append("- " + " ← ".join(f"`{label}`" for label in shown))
        return "\n".join(lines)


def profiled_cli() -> None:
    """Run the ``icebridge`` CLI in this process under a :class:`StackSampler`.

    Usage: ``python -c "import benchmarks; benchmarks.profiled_cli()" PROFILE.json <icebridge args>``; the
    samples are written to ``PROFILE.json`` (read them with ``StackSampler.from_json``) and the CLI's exit
    code is kept. The sampling interval comes from ``$BENCH_PROFILE_INTERVAL`` (seconds).
    """
    import json

    from icebridge.cli import main

    out = Path(sys.argv[1])
    sys.argv = ["icebridge", *sys.argv[2:]]
    code: int | str | None = 0
    with StackSampler(float(os.environ.get("BENCH_PROFILE_INTERVAL", "0.01"))) as sampler:
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    out.write_text(json.dumps(sampler.to_json()))
    sys.exit(code)
