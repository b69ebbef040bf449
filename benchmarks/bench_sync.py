"""Sync by snapshot replay against a full re-copy of the same table: time and bytes moved.

One partitioned source table (SQL catalog on SQLite, files on local disk) is migrated once; then the
source receives 1, 10 and 100 small appends (one small file each) and one delete commit (a
copy-on-write delete rewriting the file of one partition), and ``icebridge sync`` carries each batch
of commits. The baseline is ``icebridge migrate`` of the same table, as it ends, into an empty
destination. Reported per case: the sync run's wall time (replay and the validation that follows it),
the replay time alone (the sum of the replayed commits' times), the bytes written to the destination,
and the replay rate in commits per second, set against the catalog's commit ceiling measured by the
commits benchmark.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType
from typer.testing import CliRunner

from benchmarks import REPO_ROOT, SHARED, BenchmarkError, fmt_bytes, md_table

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "part", IntegerType(), required=False),
    NestedField(3, "note", StringType(), required=False),
)
SPEC = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "part"))
APPENDS = (1, 10, 100)
APPEND_ROWS = 200


def _rows(start: int, n: int, part: int) -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    return pa.table(
        {
            "id": ids,
            "part": pa.array([part] * n, pa.int32()),
            # hex digests: incompressible, so the table's bytes are its rows', not a dictionary's
            "note": pa.array([hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + n)]),
        }
    )


def _catalog(root: Path, name: str) -> dict[str, str]:
    return {"type": "sql", "uri": f"sqlite:///{root}/{name}.db", "warehouse": f"file://{root}/{name}-warehouse"}


def _open(name: str, props: dict[str, str]) -> SqlCatalog:
    return SqlCatalog(name, **{k: v for k, v in props.items() if k != "type"})


def _config(root: Path, foreign: dict[str, str], managed: dict[str, str], state: str) -> Path:
    config = {
        "state": f"sqlite:///{root}/{state}.db",
        "catalogs": {"foreign": foreign, "managed": managed},
        "mappings": [{"source": "foreign.*.*", "target": "managed.{namespace}", "strategy": "file-copy"}],
        "migrate": {"concurrency": 1},
        "reports": str(root / f"{state}-reports"),
    }
    path = root / f"{state}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cli(config: Path, *args: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = CliRunner().invoke(_app(), [*args, "-c", str(config), "--json"])
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise BenchmarkError(f"icebridge {' '.join(args)} exited {result.exit_code}: {result.output[-2000:]}")
    return seconds, json.loads(result.output[result.output.index("{") :])


def _app() -> Any:
    from icebridge.cli import app

    return app


def _replays(state: str, since: int) -> tuple[int, float, int]:
    """(commits, replay seconds, bytes) of the snapshot map rows recorded by runs after ``since``."""
    from icebridge.store import open_store

    store = open_store(state)
    try:
        [task] = store.list_tasks()
        rows = [r for r in store.snapshot_map(task.id) if r.how != "copy" and (r.run_id or 0) > since]
    finally:
        store.close()
    return len(rows), sum(r.seconds or 0.0 for r in rows), sum(r.bytes for r in rows)


def _ceiling() -> float | None:
    """Commits per second of one committer on one SQLite table: this run's commits benchmark, else RESULTS.md."""
    if "commits_per_s_sqlite_one" in SHARED:
        return SHARED["commits_per_s_sqlite_one"]
    results = REPO_ROOT / "benchmarks" / "RESULTS.md"
    found = (
        re.search(r"^\| SQLite \| one table \| 1 \| ([0-9.]+) \|", results.read_text(), re.M)
        if results.exists()
        else None
    )
    return float(found.group(1)) if found else None


def _table_bytes(table: Table) -> int:
    summary = table.current_snapshot().summary  # type: ignore[union-attr]
    return int(summary.additional_properties.get("total-files-size", 0)) if summary else 0


def run(data_dir: Path, quick: bool) -> str:
    """Measure sync after 1, 10 and 100 small appends and one delete against a full re-copy."""
    partitions, rows_each = (4, 2_000) if quick else (32, 100_000)
    appends = APPENDS[:2] if quick else APPENDS
    root = data_dir / "sync-bench"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    foreign, managed, fresh = _catalog(root, "foreign"), _catalog(root, "managed"), _catalog(root, "fresh")
    source_catalog = _open("foreign", foreign)
    source_catalog.create_namespace("bench")
    source = source_catalog.create_table("bench.events", SCHEMA, partition_spec=SPEC)
    source.append(pa.concat_tables([_rows(p * rows_each, rows_each, p) for p in range(partitions)]))
    config = _config(root, foreign, managed, "state")
    state = f"sqlite:///{root}/state.db"

    copy_s, _first = _cli(config, "migrate")
    table_bytes = _table_bytes(source_catalog.load_table("bench.events"))
    cases: list[tuple[str, int, float, float, int]] = []  # label, commits, wall, replay seconds, bytes moved
    next_id = partitions * rows_each
    for count in appends:
        table = source_catalog.load_table("bench.events")
        for i in range(count):
            table.append(_rows(next_id, APPEND_ROWS, i % partitions))
            next_id += APPEND_ROWS
        wall, report = _cli(config, "sync")
        commits, replay, moved = _replays(state, since=report["run_id"] - 1)
        cases.append((f"{count} small append(s)", commits, wall, replay, moved))
    table = source_catalog.load_table("bench.events")
    table.delete("part = 0 and id < 1000")
    wall, report = _cli(config, "sync")
    commits, replay, moved = _replays(state, since=report["run_id"] - 1)
    cases.append(("1 delete commit (one partition's file rewritten)", commits, wall, replay, moved))

    final_bytes = _table_bytes(source_catalog.load_table("bench.events"))
    baseline_s, _report = _cli(_config(root, foreign, fresh, "fresh-state"), "migrate")
    shutil.rmtree(root, ignore_errors=True)

    ceiling = _ceiling()
    rows = []
    for label, commits, wall, replay, moved in cases:
        rate = commits / replay if replay > 0 else 0.0
        rows.append(
            [
                label,
                commits,
                f"{wall:.2f} s",
                f"{replay:.2f} s",
                fmt_bytes(moved),
                f"{replay / baseline_s:.3f}×",
                f"{moved / final_bytes:.4f}×" if final_bytes else "n/a",
                f"{rate:.1f}",
            ]
        )
    headers = [
        "source change",
        "commits replayed",
        "sync run",
        "replay alone",
        "bytes moved",
        "replay time vs re-copy",
        "bytes vs re-copy",
        "replay commits/s",
    ]
    lines = [
        "## Sync by snapshot replay vs a full re-copy",
        "",
        __doc__.split("\n\n", 1)[1].strip().replace("\n", " "),
        "",
        f"Table: {partitions} partitions of {rows_each:,} rows, {fmt_bytes(table_bytes)} after its first copy "
        f"({copy_s:.2f} s), {fmt_bytes(final_bytes)} at the end. Full re-copy of the final table into an empty "
        f"destination (`icebridge migrate`, validation included): **{baseline_s:.2f} s, {fmt_bytes(final_bytes)} "
        "moved**.",
        "",
        md_table(headers, rows),
        "",
        "- *sync run* is the whole command: the replay, then validation at the strategy's levels (1, 2, 3), whose "
        "file-identity level reads every file of both tables, so it grows with the table; *replay alone* and "
        "*bytes moved* are what grows with the change, and the ratios compare them with the re-copy.",
        "- A replayed commit also reads the source commit's manifest list and rewrites the destination's metadata "
        "file, both of which grow with the number of snapshots, so the 100th append costs more than the first; "
        "a commit that removes files (the delete) reads the destination's manifests to find them.",
    ]
    if ceiling:
        best = max((c[1] / c[3] for c in cases if c[3] > 0), default=0.0)
        lines.append(
            f"- Replay reaches {best:.1f} commits/s at best; the catalog's ceiling for one committer on one "
            f"SQLite table is {ceiling:.1f} commits/s (commits benchmark), so each replayed commit costs "
            f"{ceiling / best if best else 0:.1f}× a bare one-file append (the replay reads the source commit's "
            "manifests, copies its files and writes the destination's manifest)."
        )
    return "\n".join(lines)
