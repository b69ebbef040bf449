"""The spark engine through IceBridge's runner and on its own: validation passes, commits carry their
markers, statements are measured, and names that need quoting survive the real Spark."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from icebridge.app.runs import RunRequest, RunResult, RunService
from icebridge.config import load_config
from icebridge.context import AppContext
from icebridge.engines import Batching, CopyJob
from icebridge.engines.spark import SparkEngine
from icebridge.engines.spark_sql import quote_identifier, quote_parts, script_statements
from icebridge.errors import CopyInterrupted
from icebridge.model import Strategy, TableRef
from tests.integration import estate as pyiceberg_estate
from tests.spark.conftest import Estate, make_estate
from tests.spark.oracle import pyiceberg_rows, spark_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


@dataclass
class SparkMigrated:
    est: Estate
    ctx: AppContext
    report: RunResult
    engine: SparkEngine


@pytest.fixture(scope="module")
def spark_migrated(tmp_path_factory: pytest.TempPathFactory, pg_server: str, spark: Any) -> SparkMigrated:
    """PyIceberg's behaviour estate plus a Spark-written merge-on-read table, migrated with ``spark-sql``."""
    est = make_estate(tmp_path_factory.mktemp("spark-engine"), pg_server, spark)
    pyiceberg_estate.build(est.foreign.pyiceberg())
    mor = quote_parts((est.foreign.name, "shop", "mor"))
    est.sql(
        f"CREATE TABLE {mor} (id BIGINT, name STRING) USING iceberg "
        "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read')"
    )
    est.sql(f"INSERT INTO {mor} SELECT id, concat('n', id) FROM range(100)")
    est.sql(f"DELETE FROM {mor} WHERE id % 4 = 0")
    for namespace in ("shop", "odd-ns"):  # see test_oracle.migrate_cli: a scaffold race not examined here
        est.managed.pyiceberg().create_namespace_if_not_exists(namespace)
    config = est.write_config(
        [{"source": f"{est.foreign.name}.*.*", "target": f"{est.managed.name}.{{namespace}}", "strategy": "spark-sql"}]
    )
    ctx = AppContext(load_config(config))
    report = RunService(ctx).run(RunRequest(command="migrate"))
    engine = ctx.engine("spark")
    assert isinstance(engine, SparkEngine)
    return SparkMigrated(est, ctx, report, engine)


def test_every_table_migrated_by_spark_passes_validation(spark_migrated: SparkMigrated) -> None:
    report = spark_migrated.report
    assert {o.source.split(".", 1)[1] for o in report.tables} == {
        "shop.events",
        "shop.customers",
        "shop.regions",
        "odd-ns.order events",
        "shop.empty",
        "shop.mor",
    }
    assert [(o.source, o.message) for o in report.tables if o.status != "succeeded"] == []
    assert report.status == "succeeded"
    store = spark_migrated.ctx.store
    for task in store.list_tasks():
        assert task.strategy == Strategy.SPARK_SQL
        validations = store.validations(task.id)
        assert validations, f"{task.source}: no validation recorded"
        assert [v.comparator for v in validations if not v.passed] == []


def test_each_spark_commit_carries_the_checkpoint_markers(spark_migrated: SparkMigrated) -> None:
    store = spark_migrated.ctx.store
    catalogs = spark_migrated.ctx.catalogs
    for task in store.list_tasks():
        destination = catalogs.load_table(TableRef.parse(task.destination))
        snapshots = destination.metadata.snapshots
        if task.source_snapshot_id is None:  # shop.empty: nothing to copy, no commit
            assert snapshots == []
            continue
        assert len(snapshots) == 1, task.source
        summary = snapshots[0].summary.additional_properties  # type: ignore[union-attr]
        assert summary["icebridge.task"] == task.source
        assert summary["icebridge.batch"] == "0"
        assert summary["icebridge.source-snapshot-id"] == str(task.source_snapshot_id)
        assert Batching.parse(summary["icebridge.batching"])
        assert summary["engine-name"] == "spark"


def test_statements_are_measured_per_task(spark_migrated: SparkMigrated) -> None:
    engine = spark_migrated.engine
    for task in spark_migrated.ctx.store.list_tasks():
        metrics = engine.metrics_for(task.source)
        if task.source_snapshot_id is None:
            assert metrics == ()
            continue
        (metric,) = metrics
        destination = spark_migrated.ctx.catalogs.load_table(TableRef.parse(task.destination))
        snapshot = destination.current_snapshot()
        assert snapshot is not None and snapshot.summary is not None
        assert metric.statement.startswith("INSERT INTO ")
        assert f"VERSION AS OF {task.source_snapshot_id}" in metric.statement
        assert metric.snapshot_id == snapshot.snapshot_id
        assert metric.rows_written == int(snapshot.summary.additional_properties["added-records"])
        assert metric.seconds >= 0
    mor = next(t for t in spark_migrated.ctx.store.list_tasks() if t.source.endswith(".shop.mor"))
    assert engine.metrics_for(mor.source)[0].rows_written == 75  # the merge-on-read deletes applied by Spark
    assert engine.session_seconds is not None


def test_statement_metrics_reach_the_event_log_through_the_job(spark_migrated: SparkMigrated) -> None:
    store = spark_migrated.ctx.store
    engine = spark_migrated.engine
    for task in store.list_tasks():
        events = [e for e in store.events(task_id=task.id) if e.kind == "statement"]
        assert [(e.message, e.data) for e in events] == [
            (m.statement, m.to_dict()) for m in engine.metrics_for(task.source)
        ]


def test_a_second_migrate_finds_everything_done(spark_migrated: SparkMigrated) -> None:
    before = len(spark_migrated.engine.metrics)
    again = RunService(spark_migrated.ctx).run(RunRequest(command="migrate"))
    assert again.status == "succeeded"
    assert {o.message for o in again.tables} == {"already done"}
    assert len(spark_migrated.engine.metrics) == before


# ---------------------------------------------------------------------------- on its own

WEIRD_NAMESPACE = ("lvl1", "sub level")
WEIRD_TABLE = "we`ird.tä ble"
WEIRD_COLUMNS = ["id", "na`me", "a.b", "straße", "sp ace"]


def _weird_source(est: Estate) -> TableRef:
    ref = TableRef(est.foreign.name, WEIRD_NAMESPACE, WEIRD_TABLE)
    est.sql(f"CREATE NAMESPACE {quote_parts((ref.catalog, WEIRD_NAMESPACE[0]))}")
    est.sql(f"CREATE NAMESPACE {quote_parts((ref.catalog, *WEIRD_NAMESPACE))}")
    id_, name, dotted, german, spaced = (quote_identifier(c) for c in WEIRD_COLUMNS)
    est.sql(
        f"CREATE TABLE {quote_parts((ref.catalog, *ref.namespace, ref.name))} "
        f"({id_} BIGINT, {name} STRING, {dotted} INT, {german} STRING, {spaced} DOUBLE) USING iceberg "
        f"PARTITIONED BY (bucket(2, {id_}))"
    )
    est.sql(
        f"INSERT INTO {quote_parts((ref.catalog, *ref.namespace, ref.name))} "
        "SELECT id, concat('n`', id), CAST(id AS INT) * 2, concat('grüße ', id), id / 4.0 FROM range(20)"
    )
    return ref


def spark_engine(est: Estate) -> SparkEngine:
    return SparkEngine(
        load_config(est.write_config([{"source": f"{est.foreign.name}.*.*", "target": f"{est.managed.name}.y"}]))
    )


def _job(est: Estate, engine: SparkEngine, source_ref: TableRef, destination_ref: TableRef, **kw: Any) -> CopyJob:
    source = est.foreign.pyiceberg().load_table(source_ref.identifier)
    snapshot = source.current_snapshot()
    assert snapshot is not None
    destination = est.managed.pyiceberg().load_table(destination_ref.identifier)
    return CopyJob(
        task=str(source_ref),
        source_ref=source_ref,
        destination_ref=destination_ref,
        source=source,
        destination=destination,
        snapshot_id=snapshot.snapshot_id,
        strategy=Strategy.SPARK_SQL,
        batching=Batching(files=100, bytes=1 << 30),
        chunk_bytes=1 << 20,
        summary_markers={"icebridge.task": str(source_ref), "icebridge.source-snapshot-id": str(snapshot.snapshot_id)},
        **kw,
    )


def test_names_with_backticks_dots_spaces_and_non_ascii_letters(estate: Estate) -> None:
    source_ref = _weird_source(estate)
    destination_ref = TableRef(estate.managed.name, ("ziel ns", "ebene.2"), "ta`b.le ñ")
    source = estate.foreign.pyiceberg().load_table(source_ref.identifier)
    engine = spark_engine(estate)
    # the scaffold half of the generated script creates the destination in Spark
    for statement in script_statements(source, source_ref, destination_ref, None):
        estate.sql(statement.sql)
    job = _job(estate, engine, source_ref, destination_ref)
    result = engine.copy(job)
    assert result.rows == 20
    schema = source.schema()
    expected = spark_rows(
        estate.spark, quote_parts((source_ref.catalog, *source_ref.namespace, source_ref.name)), schema
    )
    spark_dst = quote_parts((destination_ref.catalog, *destination_ref.namespace, destination_ref.name))
    assert len(expected) == 20
    assert spark_rows(estate.spark, spark_dst, schema) == expected
    destination = estate.managed.pyiceberg().load_table(destination_ref.identifier)
    assert [f.name for f in destination.schema().fields] == WEIRD_COLUMNS
    assert pyiceberg_rows(destination, schema) == expected
    assert destination.current_snapshot().summary.additional_properties["icebridge.batch"] == "0"  # type: ignore[union-attr]


def test_committed_or_cancelled_copies_commit_nothing(estate: Estate) -> None:
    source_ref = _weird_source(estate)
    destination_ref = TableRef(estate.managed.name, ("dst",), "copy")
    source = estate.foreign.pyiceberg().load_table(source_ref.identifier)
    for statement in script_statements(source, source_ref, destination_ref, None):
        estate.sql(statement.sql)
    engine = spark_engine(estate)

    done = engine.copy(_job(estate, engine, source_ref, destination_ref, committed_batches=frozenset({0})))
    assert (done.batches_total, done.batches_skipped, done.commits) == (1, 1, ())

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CopyInterrupted):
        engine.copy(_job(estate, engine, source_ref, destination_ref, cancel=cancel))
    assert estate.managed.pyiceberg().load_table(destination_ref.identifier).metadata.snapshots == []
    assert engine.metrics == ()
