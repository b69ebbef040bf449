"""Control-plane scale: ``icebridge inventory`` + ``icebridge plan`` over a catalog of 10,000 small tables.

The estate is a PyIceberg SQL catalog on SQLite with 100 namespaces of 100 tables each, built once and
cached under the data folder. Creating 10,000 tables through PyIceberg takes ~0.1 s each, so the estate is
stamped out from one template table instead: every table gets its own metadata file (own location and
UUID) and its own manifest list, which is what inventory reads per table (PyIceberg caches manifest lists
by path, so sharing them would flatter the numbers); the one manifest and the one tiny data file they point
to are shared, as inventory reads manifests without caching and never reads data.

Both commands run as a user runs them (the ``icebridge`` CLI in a subprocess, ``--json``), timed, with their
peak RSS, and profiled by a low-rate stack sampler in that process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, DoubleType, LongType, NestedField, StringType
from sqlalchemy import MetaData, create_engine, insert
from sqlalchemy import Table as SqlTable

from benchmarks import (
    REPO_ROOT,
    BenchmarkError,
    ProcessResult,
    StackSampler,
    bench_env,
    fmt_bytes,
    md_table,
    python_cmd,
    run_measured,
    verdict,
)

FULL_TABLES = 10_000
QUICK_TABLES = 100
TABLES_PER_NAMESPACE = 100
TARGET_SECONDS = 60.0
CATALOG = "foreign"
READY = "READY.json"
PROFILE_INTERVAL = "0.02"


def build_estate(root: Path, tables: int) -> float:
    """Create (once) a SQL catalog under ``root`` with ``tables`` one-snapshot tables; return seconds spent."""
    if (root / READY).is_file():
        return float(json.loads((root / READY).read_text())["seconds"])
    started = time.monotonic()
    shutil.rmtree(root, ignore_errors=True)
    stamp_estate(f"sqlite:///{root / 'catalog.db'}", CATALOG, root / "warehouse", tables)
    seconds = time.monotonic() - started
    (root / READY).write_text(json.dumps({"tables": tables, "seconds": seconds}))
    return seconds


def stamp_estate(uri: str, catalog_name: str, warehouse: Path, tables: int) -> None:
    """``tables`` one-snapshot tables in SQL catalog ``catalog_name`` at ``uri`` (SQLite or PostgreSQL), their
    files under ``warehouse``, in namespaces of ``TABLES_PER_NAMESPACE``, stamped out from one template."""
    warehouse.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(catalog_name, uri=uri, warehouse=f"file://{warehouse}")
    template = _template_table(catalog, warehouse)
    base = json.loads(Path(template.metadata_location.removeprefix("file://")).read_text())
    manifest_list = Path(base["snapshots"][0]["manifest-list"].removeprefix("file://"))
    manifest_list_bytes = manifest_list.read_bytes()

    rows: list[dict[str, Any]] = []
    namespaces = sorted({f"ns_{i // TABLES_PER_NAMESPACE:03d}" for i in range(tables)})
    for namespace in namespaces:
        catalog.create_namespace(namespace, {"owner": "bench"})
    for i in range(tables):
        namespace = f"ns_{i // TABLES_PER_NAMESPACE:03d}"
        name = f"t_{i:05d}"
        location = warehouse / namespace / name
        (location / "metadata").mkdir(parents=True)
        snap_list = location / "metadata" / f"snap-{base['current-snapshot-id']}-1-{uuid.uuid4()}.avro"
        snap_list.write_bytes(manifest_list_bytes)
        meta = dict(base)
        meta["location"] = f"file://{location}"
        meta["table-uuid"] = str(uuid.uuid4())
        meta["snapshots"] = [dict(base["snapshots"][0], **{"manifest-list": f"file://{snap_list}"})]
        meta["metadata-log"] = []
        meta_path = location / "metadata" / f"00001-{uuid.uuid4()}.metadata.json"
        meta_path.write_text(json.dumps(meta))
        rows.append(
            {
                "catalog_name": catalog_name,
                "table_namespace": namespace,
                "table_name": name,
                "metadata_location": f"file://{meta_path}",
                "previous_metadata_location": None,
                "iceberg_type": "TABLE",
            }
        )
    engine = create_engine(uri)
    try:
        iceberg_tables = SqlTable("iceberg_tables", MetaData(), autoload_with=engine)
        known = {c.name for c in iceberg_tables.columns}
        with engine.begin() as conn:
            conn.execute(insert(iceberg_tables), [{k: v for k, v in r.items() if k in known} for r in rows])
        # the template stays on disk (its manifest and data file are shared) but leaves the catalog
        catalog.drop_table(("template", "template"))
        catalog.drop_namespace("template")
    finally:
        engine.dispose()
        catalog.engine.dispose()


def _template_table(catalog: SqlCatalog, warehouse: Path) -> Any:
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "amount", DoubleType(), required=False),
        NestedField(4, "day", DateType(), required=False),
    )
    catalog.create_namespace("template")
    table = catalog.create_table(("template", "template"), schema, location=f"file://{warehouse / '_template'}")
    data = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "name": pa.array(["a", "b", None]),
            "amount": pa.array([1.5, None, 3.25]),
            "day": pa.array([0, 1, 2], pa.int32()).cast(pa.date32()),
        },
        schema=pa.schema(
            [
                pa.field("id", pa.int64(), nullable=False),
                pa.field("name", pa.string()),
                pa.field("amount", pa.float64()),
                pa.field("day", pa.date32()),
            ]
        ),
    )
    table.append(data)
    return table


def _config(root: Path, scratch: Path) -> Path:
    managed = scratch / "managed-warehouse"
    managed.mkdir(parents=True, exist_ok=True)
    text = f"""\
state: "sqlite:///{scratch / "state.db"}"
catalogs:
  {CATALOG}:
    type: sql
    uri: "sqlite:///{root / "catalog.db"}"
    warehouse: "file://{root / "warehouse"}"
  managed:
    type: sql
    uri: "sqlite:///{scratch / "managed.db"}"
    warehouse: "file://{managed}"
mappings:
  - source: {CATALOG}.*.*
    target: managed.{{namespace}}
"""
    path = scratch / "icebridge.yaml"
    path.write_text(text)
    return path


def _cli(scratch: Path, name: str, *args: str) -> tuple[ProcessResult, StackSampler]:
    result, sampler, _ = _timed_cli(scratch, name, *args)
    return result, sampler


def _timed_cli(scratch: Path, name: str, *args: str) -> tuple[ProcessResult, StackSampler, float]:
    """The CLI run as :func:`_cli` runs it, and the CPU seconds (user + system) its process spent."""
    import resource

    profile = scratch / f"{name}-profile.json"
    cmd = python_cmd("-c", "import benchmarks; benchmarks.profiled_cli()", str(profile), *args)
    env = bench_env()
    env["BENCH_PROFILE_INTERVAL"] = PROFILE_INTERVAL
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_measured(cmd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child is waited for: its times are in
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise BenchmarkError(f"icebridge {' '.join(args[:1])} exited {result.returncode}: {result.tail()}")
    return result, StackSampler.from_json(json.loads(profile.read_text())), cpu


def run(data_dir: Path, quick: bool) -> str:
    """Inventory + plan of a generated estate of 10,000 tables (200 with ``quick``): time and peak RSS."""
    tables = QUICK_TABLES if quick else FULL_TABLES
    root = data_dir / f"control-plane-{tables}"
    build_seconds = build_estate(root, tables)
    scratch = data_dir / "scratch" / "control-plane"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        config = _config(root, scratch)
        inv, inv_profile = _cli(scratch, "inventory", "inventory", "--refresh", "--json", "-c", str(config))
        plan, plan_profile = _cli(scratch, "plan", "plan", "--json", "-c", str(config))
        facts = json.loads(inv.stdout)
        planned = json.loads(plan.stdout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n_facts, n_planned = len(facts["tables"]), len(planned["tables"])
    if n_facts != tables or n_planned != tables or planned["blocked"]:
        raise BenchmarkError(
            f"expected {tables} tables inventoried and planned, none blocked; got {n_facts} inventoried, "
            f"{n_planned} planned, {planned['blocked']} blocked"
        )
    total = inv.seconds + plan.seconds
    peak = max(inv.peak_rss, plan.peak_rss)
    ok = total <= TARGET_SECONDS if not quick else None
    lines = [
        "## Control plane: inventory + plan of many tables",
        "",
        f"A SQL catalog on SQLite with **{tables:,} tables** in {max(1, tables // TABLES_PER_NAMESPACE)} namespaces,"
        " one snapshot, one manifest and one data file each (how the estate is built: see"
        " `benchmarks/bench_control_plane.py`), mapped by one rule `foreign.*.* → managed.{namespace}` onto an"
        " empty SQL catalog; state store on SQLite. Each command is the `icebridge` CLI in its own process"
        f" with `--json`, under a stack sampler every {float(PROFILE_INTERVAL) * 1000:.0f} ms.",
        "",
        md_table(
            ["step", "command", "wall time", "per table", "peak RSS"],
            [
                (
                    "inventory",
                    "`icebridge inventory --refresh`",
                    f"{inv.seconds:.1f} s",
                    f"{inv.seconds / tables * 1000:.2f} ms",
                    fmt_bytes(inv.peak_rss),
                ),
                (
                    "plan",
                    "`icebridge plan`",
                    f"{plan.seconds:.1f} s",
                    f"{plan.seconds / tables * 1000:.2f} ms",
                    fmt_bytes(plan.peak_rss),
                ),
                ("**inventory + plan**", "", f"**{total:.1f} s**", f"{total / tables * 1000:.2f} ms", fmt_bytes(peak)),
            ],
        ),
        "",
        f"Target: inventory + plan of 10,000 tables ≤ {TARGET_SECONDS:.0f} s: "
        + (
            f"{verdict(ok)} ({total:.1f} s, {total / TARGET_SECONDS:.0%} of the budget)."
            if ok is not None
            else f"not judged in quick mode ({tables} tables)."
        ),
        f"Building the estate took {build_seconds:.0f} s once (cached for later runs).",
    ]
    if ok is False or quick:
        lines += [
            "",
            f"Where the time goes in `icebridge inventory` ({'target missed' if ok is False else 'for reference'}):",
            "",
            inv_profile.report(),
            "",
            "Where the time goes in `icebridge plan`:",
            "",
            plan_profile.report(),
        ]
    else:
        lines += ["", "Where the time goes in `icebridge inventory` (top entries):", "", inv_profile.report(8)]
    lines += ["", *_over_rest(data_dir, tables, quick)]
    return "\n".join(lines)


PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
BUILD_REST_CATALOG = REPO_ROOT / "scripts" / "build-rest-catalog.sh"
REST_START_SECONDS = 120


def _pg(statement: str) -> None:
    from sqlalchemy import text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _over_rest(data_dir: Path, tables: int, quick: bool) -> list[str]:
    """The same estate served by the project's REST catalog server (a JdbcCatalog on PostgreSQL): every
    table is loaded through HTTP, as from a REST or Unity Catalog endpoint."""
    import secrets
    import subprocess
    import urllib.request

    launcher = _rest_launcher()
    database = f"icebridge_bench_rest_{uuid.uuid4().hex[:12]}"
    _pg(f'CREATE DATABASE "{database}"')
    scratch = data_dir / "scratch" / "control-plane-rest"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    token = secrets.token_hex(16)
    proc: subprocess.Popen[bytes] | None = None
    try:
        db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
        started = time.monotonic()
        stamp_estate(db_url, CATALOG, scratch / "warehouse", tables)
        stamp_seconds = time.monotonic() - started
        log = scratch / "server.log"
        jdbc = f"jdbc:postgresql://127.0.0.1:5432/{database}"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(launcher), "--jdbc-uri", jdbc, "--jdbc-user", "postgres", "--port", "0", "--token", token],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = _ready(proc, log)
        spec = {"name": CATALOG, "location": f"file:{scratch / 'warehouse'}", "flavor": "iceberg", "read-only": True}
        request = urllib.request.Request(
            f"{base}/manage/catalogs",
            data=json.dumps({**spec, "vended-credentials": {}}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=30).close()
        config = scratch / "icebridge.yaml"
        config.write_text(
            json.dumps(
                {
                    "state": f"sqlite:///{scratch / 'state.db'}",
                    "catalogs": {
                        CATALOG: {"type": "rest", "uri": base, "warehouse": CATALOG, "token": token},
                        "managed": {
                            "type": "sql",
                            "uri": f"sqlite:///{scratch / 'managed.db'}",
                            "warehouse": f"file://{scratch / 'managed'}",
                        },
                    },
                    "mappings": [{"source": f"{CATALOG}.*.*", "target": "managed.{namespace}"}],
                }
            )
        )
        inv, _, inv_cpu = _timed_cli(scratch, "rest-inventory", "inventory", "--refresh", "--json", "-c", str(config))
        plan, _, plan_cpu = _timed_cli(scratch, "rest-plan", "plan", "--json", "-c", str(config))
        load = os.getloadavg()[0]
        facts, planned = json.loads(inv.stdout), json.loads(plan.stdout)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
        _pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    if len(facts["tables"]) != tables or len(planned["tables"]) != tables or planned["blocked"]:
        raise BenchmarkError(f"over REST: {len(facts['tables'])} inventoried, {len(planned['tables'])} planned")
    total = inv.seconds + plan.seconds
    ok = total <= TARGET_SECONDS if not quick else None
    return [
        "### The same estate over REST",
        "",
        f"The {tables:,} tables written into a PostgreSQL database (stamped out in {stamp_seconds:.0f} s) and served "
        "by the project's REST catalog server (`make rest-catalog`: Iceberg's own request handlers over a "
        "JdbcCatalog, 16 HTTP workers, 8 database connections), read-only, on the same machine as the CLI; every "
        "table is loaded through HTTP, 32 at a time. Each command's CPU time (user + system) is given beside its "
        "wall time: on a shared machine the wall time also counts the time the other processes had the cores.",
        "",
        md_table(
            ["step", "command", "wall time", "per table", "CLI CPU time", "peak RSS"],
            [
                (
                    "inventory",
                    "`icebridge inventory --refresh`",
                    f"{inv.seconds:.1f} s",
                    f"{inv.seconds / tables * 1000:.2f} ms",
                    f"{inv_cpu:.1f} s",
                    fmt_bytes(inv.peak_rss),
                ),
                (
                    "plan",
                    "`icebridge plan`",
                    f"{plan.seconds:.1f} s",
                    f"{plan.seconds / tables * 1000:.2f} ms",
                    f"{plan_cpu:.1f} s",
                    fmt_bytes(plan.peak_rss),
                ),
                (
                    f"**inventory + plan, {tables:,} tables over REST**",
                    "",
                    f"**{total:.1f} s**",
                    f"{total / tables * 1000:.2f} ms",
                    f"{inv_cpu + plan_cpu:.1f} s",
                    fmt_bytes(max(inv.peak_rss, plan.peak_rss)),
                ),
            ],
        ),
        "",
        f"Target over REST: ≤ {TARGET_SECONDS:.0f} s for 10,000 tables: "
        + (
            f"{verdict(ok)} ({total:.1f} s, {total / TARGET_SECONDS:.0%} of the budget)."
            if ok is not None
            else f"not judged in quick mode ({tables} tables)."
        )
        + f" Load average when it ended: {load:.1f} on {os.cpu_count()} cores.",
        "",
        "Where the time went (measured on this estate): the manifest list and manifest of each table are read"
        " with Avro readers resolved once per writer schema (PyIceberg converts and resolves the schema again for"
        " every file, which was most of the reading time); the inventory is saved and the plan's tasks are"
        " recorded with one bulk statement each instead of an ORM object or two queries per table; the server"
        " had 2 database connections for 8 workers, so loads queued for a connection. `plan` reads the saved"
        " inventory and loads no source table; `inventory --refresh` run again still asks the catalog for every"
        " table (only it knows the current metadata location) but reuses the saved facts of each table whose"
        " metadata location is unchanged.",
    ]


def _rest_launcher() -> Path:
    """The REST catalog server, built from its sources when they changed since the last build."""
    import os
    import subprocess

    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}  # the venv running the benchmarks
    result = subprocess.run(
        ["bash", str(BUILD_REST_CATALOG)], capture_output=True, text=True, timeout=900, check=False, env=env
    )
    if result.returncode != 0:
        raise BenchmarkError(f"{BUILD_REST_CATALOG} failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def _ready(proc: Any, log: Path) -> str:
    deadline = time.monotonic() + REST_START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        if proc.poll() is not None:
            raise BenchmarkError(f"the REST catalog server exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise BenchmarkError(f"the REST catalog server did not start within {REST_START_SECONDS} s")


if __name__ == "__main__":
    sys.exit("run through python -m benchmarks.run --only control_plane")
