"""Spark ``INSERT … SELECT`` against the local engine's strategies, on the same table, machine and run.

The benchmark ``lineitem`` table (``benchmarks.data``) is registered, without copying, in a PostgreSQL
SQL catalog that a local SparkSession shares with PyIceberg (Iceberg's JDBC catalog, same name, same
warehouse spelling). Each method copies it into a freshly scaffolded destination through the engine
IceBridge runs for it:

- **spark-sql**: ``SparkEngine.copy`` — one ``INSERT INTO … SELECT … VERSION AS OF`` on ``local[2]``
  (driver memory 2g, the jars of ``make spark-runtime``); the time is the statement alone;
- **rewrite** / **file-copy**: ``LocalEngine.copy``, as ``icebridge migrate`` runs it;
- **spark file-copy ×1 / ×2**: ``SparkEngine.copy`` with strategy file-copy — the executors copy the files
  (``engines.spark_copy``), with at most 1 or 2 Spark tasks at once (one or both of ``local[2]``'s cores);
  the time includes starting the executors' Python workers.

Starting the SparkSession (JVM, jars, catalogs) is timed apart: it is paid once per process, not per
table. Every copy is then validated by IceBridge (not timed) so a fast wrong copy cannot win.

Validation is timed too, on a local file-copy of the table: levels 3 and 4 (``validate --level 4``: every
file of both sides checksummed, every row of both sides digested) by this process's threads
(``validate local``, the baseline) and on the executors (``validation.spark_exec``) with at most 1 or 2
Spark tasks at once (``validate spark ×1 / ×2``). The executors' results must equal the local ones
(checksums and digests), or the section fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import MIB, BenchmarkError, fmt_bytes, fmt_rate, fmt_ratio, md_table, verdict
from benchmarks.data import IDENTIFIER, data_bytes, lineitem_table, record_count

FULL_BYTES = 256 * MIB  # the "S" table of the copy benchmark, so its cached build is reused
QUICK_BYTES = 2 * MIB
FULL_ROUNDS = 2
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
JARS_DIR = Path(__file__).resolve().parent.parent / "build" / "spark-jars"
SOURCE = "bench_src"
TARGET = "bench_dst"


@dataclass
class Copy:
    method: str
    round: int
    seconds: float | None
    rows: int
    validated: bool | None
    error: str = ""


def _admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _config(work: Path, database_url: str) -> Path:
    import yaml

    warehouse = work / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    catalogs = {
        # 'file:/…': the spelling Spark and PyIceberg both write alike
        name: {"type": "sql", "uri": database_url, "warehouse": f"file:{warehouse}"}
        for name in (SOURCE, TARGET)
    }
    config = {
        "state": f"sqlite:///{work / 'state.db'}",
        "catalogs": catalogs,
        "mappings": [{"source": f"{SOURCE}.*.*", "target": f"{TARGET}.copies"}],
        "engines": {
            "spark": {
                "master": "local[2]",
                "driver_memory": "2g",
                "jars_dir": str(JARS_DIR),
                "conf": {"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"},
            }
        },
    }
    path = work / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


SPARK_FILE_COPY = {"spark file-copy ×1": 1, "spark file-copy ×2": 2}


def _copy_once(ctx: Any, engine: Any, method: str, round_no: int) -> Copy:
    from icebridge.engines import Batching, CopyJob
    from icebridge.model import Strategy, TableRef
    from icebridge.phases import scaffold, validate

    source_ref = TableRef(SOURCE, IDENTIFIER[:-1], IDENTIFIER[-1])
    slug = "".join(ch if ch.isalnum() else "_" for ch in method)
    dest_ref = TableRef(TARGET, ("copies",), f"{slug}_{round_no}")
    source = ctx.catalogs.load_table(source_ref)
    snapshot = source.current_snapshot()
    destination, _ = scaffold.ensure(ctx.catalogs, source, dest_ref)
    settings = ctx.config.migrate
    job = CopyJob(
        task=str(source_ref),
        source_ref=source_ref,
        destination_ref=dest_ref,
        source=source,
        destination=destination,
        snapshot_id=snapshot.snapshot_id,
        strategy=Strategy("file-copy" if method in SPARK_FILE_COPY else method),
        batching=Batching(files=settings.files_per_commit, bytes=settings.commit_bytes),
        chunk_bytes=settings.chunk_bytes,
        summary_markers={"icebridge.task": str(source_ref), "icebridge.source-snapshot-id": str(snapshot.snapshot_id)},
    )
    started = time.monotonic()
    try:
        if method in SPARK_FILE_COPY:
            from icebridge.engines import spark_copy

            result = spark_copy.copy(engine, job, max_tasks=SPARK_FILE_COPY[method])
        else:
            result = engine.copy(job)
    except Exception as exc:
        return Copy(method, round_no, None, 0, None, f"{type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.monotonic() - started
    if method == "spark-sql":
        seconds = engine.metrics_for(job.task)[-1].seconds  # the INSERT … SELECT statement alone
    destination.refresh()
    # every method's copy is checked down to its rows (level 4), a byte copy's too
    results = validate.compare(source, snapshot.snapshot_id, destination, byte_copy=False, default_levels=(1, 2, 4))
    return Copy(method, round_no, seconds, result.rows, all(r.passed for r in results))


VALIDATIONS = {"validate local": None, "validate spark ×1": 1, "validate spark ×2": 2}


@dataclass
class Validation:
    method: str
    round: int
    seconds: float
    bytes: int  # data read: both sides' files at level 3, both sides' data files at level 4
    passed: bool
    results: dict[str, Any]  # comparator -> details, without where they ran


def _byte_copy(ctx: Any, local: Any, round_no: int) -> tuple[Any, int, Any]:
    """A local file-copy of the benchmark table to validate: (source, pinned snapshot id, destination)."""
    from icebridge.engines import Batching, CopyJob
    from icebridge.model import Strategy, TableRef
    from icebridge.phases import scaffold

    source_ref = TableRef(SOURCE, IDENTIFIER[:-1], IDENTIFIER[-1])
    dest_ref = TableRef(TARGET, ("copies",), f"validated_{round_no}")
    source = ctx.catalogs.load_table(source_ref)
    snapshot = source.current_snapshot().snapshot_id
    destination, _ = scaffold.ensure(ctx.catalogs, source, dest_ref)
    settings = ctx.config.migrate
    local.copy(
        CopyJob(
            task=str(source_ref),
            source_ref=source_ref,
            destination_ref=dest_ref,
            source=source,
            destination=destination,
            snapshot_id=snapshot,
            strategy=Strategy("file-copy"),
            batching=Batching(files=settings.files_per_commit, bytes=settings.commit_bytes),
            chunk_bytes=settings.chunk_bytes,
            summary_markers={"icebridge.task": str(source_ref), "icebridge.source-snapshot-id": str(snapshot)},
        )
    )
    destination.refresh()
    return source, snapshot, destination


def _warm_up(engine: Any, copied: tuple[Any, int, Any]) -> None:
    """One untimed level-3 job on the executors, so that no timed run pays for starting their Python workers
    and importing the shipped code (as a long-running engine would have paid it once)."""
    from icebridge.phases import validate
    from icebridge.validation.spark_exec import SparkExecutors

    source, snapshot, destination = copied
    executors = SparkExecutors(engine.session())
    validate.compare(source, snapshot, destination, byte_copy=True, default_levels=(3,), executors=executors)


def _validate_once(ctx: Any, engine: Any, copied: tuple[Any, int, Any], method: str, round_no: int) -> Validation:
    from icebridge.phases import validate
    from icebridge.validation.spark_exec import SparkExecutors

    source, snapshot, destination = copied
    tasks = VALIDATIONS[method]
    executors = SparkExecutors(engine.session(), max_tasks=tasks) if tasks else None
    started = time.monotonic()
    results = validate.compare(
        source,
        snapshot,
        destination,
        byte_copy=True,
        default_levels=(1, 2, 3),
        levels=[4],
        workers=ctx.config.migrate.validation_threads(),
        executors=executors,
    )
    seconds = time.monotonic() - started
    by_name = {r.comparator: r for r in results}
    read = sum(
        int(by_name[n].details.get("bytes_read", 0)) for n in ("file-identity", "content-digest") if n in by_name
    )
    kept = {
        r.comparator: {k: v for k, v in r.details.items() if k != "executed_on"}
        for r in results
        if r.comparator in ("file-identity", "content-digest")
    }
    return Validation(method, round_no, seconds, read, all(r.passed for r in results) and len(kept) == 2, kept)


def run(data_dir: Path, quick: bool, only: Sequence[str] | None = None, rounds: int | None = None) -> str:
    """Markdown: session start, then the copy time of each method on the same table.

    ``only`` keeps some of the methods, ``rounds`` overrides the number of rounds (for a focused run on a
    busy machine: ``bench_spark.run(Path("benchmarks/data"), False, ["file-copy", "spark file-copy ×1"], 1)``).
    """
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise BenchmarkError("pyspark is not installed: pip install 'icebridge[spark]'") from exc
    if not any(JARS_DIR.glob("iceberg-spark-runtime-3.5_*.jar")):
        raise BenchmarkError(f"{JARS_DIR} has no Iceberg Spark runtime jar: run `make spark-runtime` first")
    from pyiceberg.catalog.sql import SqlCatalog

    from icebridge.config import load_config
    from icebridge.context import AppContext
    from icebridge.engines.local import LocalEngine
    from icebridge.engines.spark import SparkEngine

    min_bytes = QUICK_BYTES if quick else FULL_BYTES
    rounds = rounds or (1 if quick else FULL_ROUNDS)
    _catalog, table = lineitem_table(data_dir, min_bytes)
    size, rows = data_bytes(table), record_count(table)
    database = f"icebridge_bench_spark_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f'CREATE DATABASE "{database}"')
    except Exception as exc:
        raise BenchmarkError(
            f"PostgreSQL on 127.0.0.1:5432 is needed (bash scripts/ensure-postgres.sh): {exc}"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-spark-", dir=data_dir)).resolve()
    engine: SparkEngine | None = None
    copies: list[Copy] = []
    validations: list[Validation] = []
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
        config = load_config(_config(work, url))
        source_catalog = SqlCatalog(SOURCE, uri=url, warehouse=config.catalogs[SOURCE]["warehouse"])
        source_catalog.create_namespace(IDENTIFIER[:-1])
        source_catalog.register_table(IDENTIFIER, table.metadata_location)  # zero-copy: same files
        ctx = AppContext(config)
        # the executors' Python workers (spark file-copy) run this interpreter, as pyspark's PYSPARK_PYTHON says
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        engine = SparkEngine(config)
        engine.session().sparkContext.setLogLevel("ERROR")
        session_seconds = engine.session_seconds
        local = LocalEngine(config)
        methods = ["spark-sql", *sorted(str(s) for s in local.strategies), *SPARK_FILE_COPY]
        methods = [m for m in methods if only is None or m in only]
        checks = [m for m in VALIDATIONS if only is None or m in only]
        for round_no in range(1, rounds + 1):
            for method in methods:
                runner = local if method in local.strategies else engine
                copies.append(_copy_once(ctx, runner, method, round_no))
            if checks:
                copied = _byte_copy(ctx, local, round_no)
                if round_no == 1 and any(VALIDATIONS[m] for m in checks):
                    _warm_up(engine, copied)
                for method in checks:
                    validations.append(_validate_once(ctx, engine, copied, method, round_no))
    finally:
        if engine is not None and engine._session is not None:
            engine._session.stop()
        shutil.rmtree(work, ignore_errors=True)
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return _report(copies, size, rows, session_seconds, quick) + _validation_report(validations)


def _validation_report(validations: list[Validation]) -> str:
    """Markdown: levels 3 and 4 of a byte copy, in this process and on 1 or 2 executor cores."""
    if not validations:
        return ""
    best: dict[str, float] = {}
    for v in validations:
        if v.passed:
            best[v.method] = min(best.get(v.method, v.seconds), v.seconds)
    baseline = best.get("validate local")
    rows = [
        (
            v.method,
            v.round,
            f"{v.seconds:.2f}",
            fmt_bytes(v.bytes),
            fmt_rate(v.bytes, v.seconds),
            fmt_ratio(baseline / v.seconds) if baseline and v.passed else "n/a",
            verdict(v.passed),
        )
        for v in validations
    ]
    lines = [
        "### Validation on the executors: levels 3 and 4 of a byte copy",
        "",
        "`validate --level 4` of a local file-copy of the table: every file of both sides checksummed (xxh3-128), "
        "every row of both sides digested per partition. `validate local`: this process's threads; `validate spark "
        "×N`: the per-file work on the Spark executors of local[2], at most N tasks at once (the time includes "
        "scheduling the two jobs; the executors' Python workers were started by an untimed job before). The "
        "executors' checksums and digests equal the local ones.",
        "",
        md_table(["method", "round", "validate s", "data read", "throughput", "speed vs local", "passed"], rows),
        "",
    ]
    if baseline:
        for method, seconds in sorted(best.items()):
            if method != "validate local":
                lines.append(
                    f"- best {method}: {seconds:.2f} s, local {baseline:.2f} s: {fmt_ratio(baseline / seconds)} as fast"
                )
    lines.append("")
    # each round validates its own copy: compare with the local validation of the same copy
    reference = {v.round: v.results for v in validations if v.method == "validate local"}
    differing = [v for v in validations if v.round in reference and v.results != reference[v.round]]
    failed = [v for v in validations if not v.passed]
    if failed or differing:
        raise BenchmarkError(
            "validations failed or disagreed with the local one: "
            + ", ".join(f"{v.method} round {v.round}" for v in failed + differing),
            "\n".join(lines),
        )
    return "\n".join(lines) + "\n"


def _report(copies: list[Copy], size: int, rows: int, session_seconds: float | None, quick: bool) -> str:
    best: dict[str, float] = {}
    for c in copies:
        if c.seconds is not None and c.validated:
            best[c.method] = min(best.get(c.method, c.seconds), c.seconds)
    spark = best.get("spark-sql")
    table_rows = [
        (
            c.method,
            c.round,
            f"{c.seconds:.2f}" if c.seconds is not None else "failed",
            f"{c.rows:,}",
            fmt_rate(size, c.seconds) if c.validated else "n/a",
            fmt_ratio(spark / c.seconds) if spark and c.seconds and c.validated else "n/a",
            verdict(c.validated) if not c.error else f"error: {c.error}",
        )
        for c in copies
    ]
    lines = [
        "## Spark engine",
        "",
        f"`lineitem`: {fmt_bytes(size)} of Parquet, {rows:,} rows"
        + (" (quick run: a smoke test of the harness, not a measurement)." if quick else "."),
        "Spark: local[2], driver memory 2g, Spark 3.5 with Iceberg 1.10; both engines share one PostgreSQL "
        "SQL/JDBC catalog. Copy times exclude scaffolding and validation; every copy was validated.",
        "",
        f"SparkSession start (JVM, jars, catalogs; once per process): **{session_seconds:.2f} s**"
        if session_seconds is not None
        else "SparkSession start: not measured",
        "",
        md_table(
            ["method", "round", "copy s", "rows written", "throughput", "speed vs spark-sql", "validated"], table_rows
        ),
        "",
    ]
    if spark is not None:
        for method, seconds in sorted(best.items()):
            if method != "spark-sql":
                ratio = fmt_ratio(spark / seconds)
                lines.append(f"- best {method}: {seconds:.2f} s, spark-sql {spark:.2f} s: {method} is {ratio} as fast")
    lines += ["", *_capacity(best, size)]
    failed = [c for c in copies if not c.validated]
    if failed:
        raise BenchmarkError(
            "copies failed or did not validate: " + ", ".join(f"{c.method} round {c.round}" for c in failed),
            "\n".join(lines),
        )
    return "\n".join(lines) + "\n"


PB = 10**15
DAY = 86_400.0
TARGET_DAYS = 5.0
ESTATES = (("1 PB / 500 tables", 1 * PB), ("5 PB / 10,000 tables", 5 * PB))
EXECUTORS = (1, 8, 32, 128)


def _capacity(best: dict[str, float], size: int) -> list[str]:
    """The rates measured in this run, per executor (a Spark copy task, or one local process), carried to the
    PRD's estates: days of copying with N executors, and the executors 5 days need."""
    from benchmarks import SHARED

    rates: list[tuple[str, float]] = []
    if "spark file-copy ×1" in best:
        rates.append(("spark file-copy, per executor core (×1)", size / best["spark file-copy ×1"]))
    if "spark file-copy ×2" in best:
        per_core = size / best["spark file-copy ×2"] / 2
        rates.append(("spark file-copy, per executor core (×2 / 2)", per_core))
    if "file-copy" in best:
        rates.append(("local file-copy, one process (2 cores)", size / best["file-copy"]))
    if "rewrite" in best:
        rates.append(("rewrite, one process (decode + encode)", size / best["rewrite"]))
    if "spark-sql" in best:
        rates.append(("spark-sql, local[2] (2 cores)", size / best["spark-sql"]))
    for key, label in (
        ("s3_server_side_bytes_per_second", "S3 server-side copy, one process (moto)"),
        ("s3_streamed_bytes_per_second", "S3 streamed copy, one process (moto)"),
    ):
        if key in SHARED:
            rates.append((label, SHARED[key]))
    if not rates:
        return []
    headers = ["rate measured here", "per executor", *(f"days for 1 PB on {n}" for n in EXECUTORS)]
    headers += [f"executors for {TARGET_DAYS:.0f} days: {label}" for label, _ in ESTATES]
    rows = []
    for label, rate in rates:
        days = [ESTATES[0][1] / (rate * n) / DAY for n in EXECUTORS]
        needed = [int(-(-total // (rate * TARGET_DAYS * DAY))) for _l, total in ESTATES]
        rows.append([label, fmt_rate(rate, 1.0), *(f"{d:,.1f}" for d in days), *(f"{n:,}" for n in needed)])
    prd = 2 * 10**9
    return [
        "### Capacity: the rates measured here carried to the PRD's estates",
        "",
        "Copy time only, spread evenly over N executors that each copy at the rate measured here (no shared "
        "bottleneck assumed: the object store, the network and the catalog's commit rate must keep up). "
        f"{TARGET_DAYS:.0f} days for 1 PB need {fmt_rate(PB / (TARGET_DAYS * DAY), 1.0)} in all; the PRD's "
        f"{fmt_rate(prd, 1.0)} per executor would need {int(-(-PB // (prd * TARGET_DAYS * DAY)))} executors for "
        f"1 PB and {int(-(-5 * PB // (prd * TARGET_DAYS * DAY)))} for 5 PB.",
        "",
        md_table(headers, rows),
        "",
        "The spark file-copy rows are one copy job over one table: they include starting the executors' Python "
        "workers and scheduling the job, a fixed cost per batch that a table of this size does not amortise; "
        "they are a floor for an executor's rate, not its steady state.",
        "",
    ]
