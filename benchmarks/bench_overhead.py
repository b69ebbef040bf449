"""Fixed overhead: what a user waits for before and around the work, as whole processes.

Against the import of PyIceberg's SQL catalog and PyArrow (``python -c "import pyiceberg.catalog.sql,
pyarrow"``, the least any IceBridge command touching a catalog needs), measured in the same run and
interleaved with it so the machine's drift hits both alike:

- ``icebridge status`` on a small store (a few runs and tasks): target at most 1.5x the import;
- ``icebridge migrate`` of a one-table estate of about 2 MB into a fresh destination and state store
  (inventory, plan, scaffold, copy, validate, report): target at most 2.5 s on this machine.

Each figure is the median of several runs; the migrate runs each start from a pristine copy of the
estate, so every one does the whole work.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks import BenchmarkError, bench_env, fmt_ratio, md_table, python_cmd, run_measured, verdict

BASELINE = ("-c", "import pyiceberg.catalog.sql, pyarrow")
STATUS_TARGET = 1.5  # x the import
MIGRATE_TARGET = 2.5  # seconds
ROWS = 150_000  # about 2 MB of Parquet


def build_estate(root: Path) -> Path:
    """A one-table SQL catalog on SQLite and its icebridge.yaml; returns the configuration's path."""
    import numpy as np
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    (root / "foreign-warehouse").mkdir(parents=True)
    catalog = SqlCatalog("foreign", uri=f"sqlite:///{root}/foreign.db", warehouse=f"file://{root}/foreign-warehouse")
    catalog.create_namespace("shop")
    rng = np.random.default_rng(7)
    data = pa.table(
        {
            "id": pa.array(np.arange(ROWS), pa.int64()),
            "amount": pa.array(rng.random(ROWS)),
            "label": pa.array([f"item-{i % 9000}" for i in range(ROWS)], pa.string()),
        }
    )
    catalog.create_table("shop.orders", data.schema).append(data)
    config = root / "icebridge.yaml"
    config.write_text(
        "catalogs:\n"
        f'  foreign: {{type: sql, uri: "sqlite:///{root}/foreign.db", warehouse: "file://{root}/foreign-warehouse"}}\n'
        f'  managed: {{type: sql, uri: "sqlite:///{root}/managed.db", warehouse: "file://{root}/managed-warehouse"}}\n'
        "mappings:\n"
        "  - {source: foreign.shop.*, target: managed.shop}\n"
    )
    return config


def _seconds(cmd: list[str], cwd: Path) -> float:
    result = run_measured(cmd, env=bench_env(), cwd=cwd)
    if not result.ok:
        raise BenchmarkError(f"{' '.join(cmd)} failed with exit code {result.returncode}:\n{result.tail()}")
    return result.seconds


def run(data_dir: Path, quick: bool) -> str:
    """Markdown: medians of the import, ``status`` and the tiny ``migrate``, with their ratios and targets."""
    rounds = 1 if quick else 7
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-", dir=data_dir)).resolve()
    try:
        pristine = work / "pristine"
        config = build_estate(pristine)
        size = sum(p.stat().st_size for p in (pristine / "foreign-warehouse").rglob("*.parquet"))
        icebridge = python_cmd("-m", "icebridge")
        # the small store that status reads: one migrate of its own
        status_dir = work / "status"
        shutil.copytree(pristine, status_dir)
        _seconds([*icebridge, "migrate", "-c", str(status_dir / config.name)], status_dir)
        imports, statuses, migrates = [], [], []
        for n in range(rounds + 1):  # the first round warms the file cache and is not counted
            fresh = work / f"migrate-{n}"
            shutil.copytree(pristine, fresh)
            baseline = _seconds(python_cmd(*BASELINE), work)
            status = _seconds([*icebridge, "status", "-c", str(status_dir / config.name)], work)
            migrate = _seconds([*icebridge, "migrate", "-c", str(fresh / config.name)], work)
            shutil.rmtree(fresh)
            if n:
                imports.append(baseline)
                statuses.append(status)
                migrates.append(migrate)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    imp, stat, mig = statistics.median(imports), statistics.median(statuses), statistics.median(migrates)
    ratio = stat / imp
    rows = [
        ("`python -c 'import pyiceberg.catalog.sql, pyarrow'` (baseline)", f"{imp:.2f}", fmt_ratio(1.0), "-", "-"),
        (
            "`icebridge status` (small store)",
            f"{stat:.2f}",
            fmt_ratio(ratio),
            f"≤ {STATUS_TARGET}×",
            verdict(ratio <= STATUS_TARGET),
        ),
        (
            f"`icebridge migrate` (one table, {size / 1e6:.1f} MB)",
            f"{mig:.2f}",
            fmt_ratio(mig / imp),
            f"≤ {MIGRATE_TARGET} s",
            verdict(mig <= MIGRATE_TARGET),
        ),
    ]
    return (
        "## Fixed overhead: status and a tiny migrate as whole processes\n\n"
        f"Whole processes, median of {rounds} interleaved rounds after one warm-up round; each migrate into a "
        "fresh destination and state store.\n\n"
        + md_table(["command", "median s", "vs the import", "target", "verdict"], rows)
    )
