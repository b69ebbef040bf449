"""Run the benchmarks and write ``benchmarks/RESULTS.md``.

``python -m benchmarks.run [--quick] [--only NAME ...] [--data-dir DIR] [--output PATH]``

Every ``benchmarks/bench_<name>.py`` exposing ``run(data_dir: Path, quick: bool) -> str`` is one section.
The sections run in a fixed order (copy, commits, control_plane, sync, then any other alphabetically). A failing
section is reported with its error and whatever it measured before; the command then exits 1.

Each section is written between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``. With ``--only``
the sections that ran replace their earlier text in the results file and every other section is kept
as it was (each keeps the date line of the run that measured it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from benchmarks import REPO_ROOT, BenchmarkError, fmt_bytes

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = BENCH_DIR / "data"
DEFAULT_OUTPUT = BENCH_DIR / "RESULTS.md"
FIRST = ("copy", "commits", "control_plane", "sync")  # sync after commits: it compares with their ceiling
VERSIONED = (
    "icebridge",
    "pyiceberg",
    "pyarrow",
    "duckdb",
    "sqlalchemy",
    "psycopg2-binary",
    "tpchgen-cli",
    "playwright",
)

RunFn = Callable[[Path, bool], str]


def discover() -> list[str]:
    """Benchmark names (``bench_<name>.py``) in run order."""
    names = sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def _read_first(path: str, key: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _disk(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(path)
    kind = ""
    try:
        dev = os.stat(path).st_dev
        block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
        rotational = (block / "queue" / "rotational").read_text().strip() if (block / "queue").exists() else None
        if rotational is not None:
            kind = "rotational disk, " if rotational == "1" else "non-rotational disk, "
    except OSError:
        pass
    return f"{kind}{fmt_bytes(usage.total)} total, {fmt_bytes(usage.free)} free at the start"


def machine(data_dir: Path) -> str:
    """The machine and library versions, as a Markdown list."""
    mem_kib = _read_first("/proc/meminfo", "MemTotal")
    memory = fmt_bytes(int(mem_kib.split()[0]) * 1024) if mem_kib else "unknown"
    cpu = _read_first("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- Memory: {memory}",
        f"- Disk (data folder): {_disk(data_dir)}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; " + ", ".join(f"{name} {_version(name)}" for name in VERSIONED),
    ]
    return "\n".join(lines)


def _shown_command(argv: Sequence[str]) -> str:
    # paths are machine-specific: show them relative to the repository, or only their name
    shown = []
    for arg in argv:
        if os.sep in arg and os.path.isabs(arg):
            path = Path(arg)
            try:
                arg = str(path.relative_to(REPO_ROOT))
            except ValueError:
                arg = f"<{path.name}>"
        shown.append(arg)
    return " ".join(["python -m benchmarks.run", *shown])


def run_one(name: str, data_dir: Path, quick: bool) -> tuple[str, bool]:
    """Run ``bench_<name>.run`` and return (its Markdown section, whether it succeeded)."""
    started = time.monotonic()
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        fn: RunFn = module.run
        body = fn(data_dir, quick).strip()
        took = time.monotonic() - started
        return f"{body}\n\n_Section took {took:.0f} s._", True
    except BaseException as exc:  # a failing benchmark is reported, never hides the others
        if isinstance(exc, KeyboardInterrupt):
            raise
        took = time.monotonic() - started
        partial = exc.partial.strip() if isinstance(exc, BenchmarkError) else ""
        trace = "".join(traceback.format_exception(exc, limit=6)).strip()
        text = [f"## bench_{name}: FAILED", "", f"**Error:** {type(exc).__name__}: {exc}", "", "```", trace, "```"]
        if partial:
            text += ["", "What was measured before the failure:", "", partial]
        text += ["", f"_Section took {took:.0f} s._"]
        return "\n".join(text), False


_SECTION = re.compile(r"<!-- bench:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)\n<!-- /bench:(?P=name) -->", re.S)


def marked(name: str, body: str) -> str:
    """A section as it is stored in the results file."""
    return f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"


def earlier_sections(path: Path) -> dict[str, str]:
    """The marked sections of an existing results file, by benchmark name (empty when there is none)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    return {m["name"]: m["body"] for m in _SECTION.finditer(text)}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the chosen benchmarks, write the results file; 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and short runs (a smoke test)")
    parser.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="generated data (cached)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the results")
    args = parser.parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)

    names = discover()
    if args.only:
        wanted = [n.removeprefix("bench_").removesuffix(".py") for n in args.only]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(names)}")
        names = [n for n in names if n in wanted]
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    started = dt.datetime.now(dt.UTC)
    header = [
        "# IceBridge benchmark results",
        "",
        f"Last written by `{_shown_command(argv_list)}` (`make bench` runs them all) on {started:%Y-%m-%d %H:%M} UTC"
        + (" in **quick** mode (tiny data: a smoke test, not a measurement)." if args.quick else ".")
        + " Each section ends with the date of the run that measured it.",
        "Every comparison below was measured side by side in this same run; read the ratios, not the absolute",
        "numbers, which depend on the machine.",
        "",
        "## Machine",
        "",
        machine(data_dir),
    ]
    output: Path = args.output
    kept = earlier_sections(output) if args.only else {}
    stamp = f"_Measured {started:%Y-%m-%d %H:%M} UTC{' (quick mode)' if args.quick else ''}._"
    measured: dict[str, str] = {}
    failed: list[str] = []
    for name in names:
        print(f"benchmarks: running {name} ...", file=sys.stderr, flush=True)
        section, ok = run_one(name, data_dir, args.quick)
        measured[name] = f"{section}\n\n{stamp}"
        if not ok:
            failed.append(name)
        print(section + "\n", flush=True)
    sections = [marked(n, measured.get(n) or kept[n]) for n in discover() if n in measured or n in kept]
    total = (dt.datetime.now(dt.UTC) - started).total_seconds()
    footer = (
        f"_Last run: {total / 60:.1f} min for {', '.join(measured)}; failed sections: {', '.join(failed) or 'none'}._"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n\n" + footer + "\n")
    print(f"benchmarks: wrote {output}", file=sys.stderr)
    if failed:
        print(f"benchmarks: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
