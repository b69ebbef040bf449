"""Spark, Iceberg's reference implementation, as the oracle for what IceBridge's local engine writes.

Spark writes the foreign tables (merge-on-read position deletes, partition evolution, nested types,
a v1 table); the real ``icebridge migrate`` copies them with the local engine; the destination must
read back identical, row for row, in Spark and in PyIceberg.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from icebridge.cli import app
from icebridge.engines.spark_sql import quote_parts
from icebridge.store import open_store
from tests.spark.conftest import Estate, make_estate
from tests.spark.oracle import pyiceberg_rows, spark_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

NS = "shop"


def spark_table(catalog: str, name: str) -> str:
    return quote_parts((catalog, NS, name))


def write_foreign_tables(est: Estate) -> dict[str, str]:
    """The foreign estate, written by Spark; returns table name → what it exercises."""
    f = est.foreign.name
    est.sql(f"CREATE NAMESPACE {quote_parts((f, NS))}")

    mor = spark_table(f, "mor")
    est.sql(
        f"CREATE TABLE {mor} (id BIGINT, region STRING, amount DECIMAL(10, 2), at TIMESTAMP) USING iceberg "
        "PARTITIONED BY (region) TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read', "
        "'write.update.mode' = 'merge-on-read')"
    )
    est.sql(
        f"INSERT INTO {mor} SELECT id, element_at(array('eu', 'us', 'apac'), CAST(id % 3 AS INT) + 1), "
        "CAST(id * 1.25 AS DECIMAL(10, 2)), "
        "TIMESTAMP '2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, CAST(id AS INT)) "
        "FROM range(240)"
    )
    est.sql(f"DELETE FROM {mor} WHERE id % 7 = 0")
    est.sql(f"UPDATE {mor} SET amount = amount + 1 WHERE id % 11 = 0")

    evolved = spark_table(f, "evolved")
    est.sql(f"CREATE TABLE {evolved} (id BIGINT, region STRING, day DATE) USING iceberg PARTITIONED BY (region)")
    est.sql(
        f"INSERT INTO {evolved} SELECT id, IF(id % 2 = 0, 'eu', 'us'), "
        "date_add(DATE '2024-01-01', CAST(id AS INT)) FROM range(100)"
    )
    est.sql(f"ALTER TABLE {evolved} ADD PARTITION FIELD bucket(4, id)")
    est.sql(f"ALTER TABLE {evolved} ADD COLUMN note STRING")
    est.sql(
        f"INSERT INTO {evolved} SELECT id, 'apac', date_add(DATE '2024-06-01', CAST(id AS INT)), "
        "IF(id % 3 = 0, NULL, concat('n', id)) FROM range(100, 180)"
    )

    nested = spark_table(f, "nested")
    est.sql(
        f"CREATE TABLE {nested} (id BIGINT, "
        "customer STRUCT<name: STRING, address: STRUCT<city: STRING, zip: INT>>, "
        "tags ARRAY<STRING>, scores MAP<STRING, DOUBLE>, items ARRAY<STRUCT<sku: STRING, qty: INT>>) USING iceberg"
    )
    est.sql(
        f"INSERT INTO {nested} SELECT id, "
        "IF(id % 10 = 0, NULL, named_struct('name', concat('c', id), "
        "'address', IF(id % 4 = 0, NULL, "
        "named_struct('city', IF(id % 3 = 0, NULL, 'Oslo'), 'zip', CAST(id AS INT))))), "
        "CASE WHEN id % 6 = 0 THEN NULL WHEN id % 6 = 1 THEN array() ELSE array(concat('t', id), NULL, 'x') END, "
        "IF(id % 5 = 0, NULL, map('a', id / 2.0, 'b', CAST(NULL AS DOUBLE))), "
        "IF(id % 8 = 0, array(), array(named_struct('sku', concat('s', id), 'qty', CAST(id AS INT)), "
        "named_struct('sku', NULL, 'qty', NULL))) "
        "FROM range(120)"
    )

    for name in NULL_STRUCT_LISTS:
        table = spark_table(f, name)
        est.sql(f"CREATE TABLE {table} (id BIGINT, items ARRAY<STRUCT<sku: STRING, qty: INT>>) USING iceberg")
        est.sql(
            f"INSERT INTO {table} SELECT id, CASE WHEN id % 3 = 0 THEN NULL WHEN id % 3 = 1 THEN array() "
            "ELSE array(named_struct('sku', concat('s', id), 'qty', CAST(id AS INT))) END FROM range(30)"
        )

    v1 = spark_table(f, "v1")
    est.sql(f"CREATE TABLE {v1} (id BIGINT, name STRING) USING iceberg TBLPROPERTIES ('format-version' = '1')")
    est.sql(f"INSERT INTO {v1} SELECT id, concat('name-', id) FROM range(50)")
    est.sql(f"INSERT INTO {v1} SELECT id, NULL FROM range(50, 80)")
    est.sql(f"DELETE FROM {v1} WHERE id BETWEEN 10 AND 19")  # copy-on-write: v1 has no delete files
    return {
        "mor": "v2 merge-on-read position deletes",
        "evolved": "partition evolution and an added column",
        "nested": "nested struct, list and map types",
        "v1": "a format-version 1 table",
    }


# the same NULL list<struct> table twice: the second is forced through the rewrite strategy
NULL_STRUCT_LISTS = ("null_lists", "null_lists_rewrite")


def assert_identical_everywhere(est: Estate, name: str) -> None:
    """Destination = pinned source, as read by Spark and by PyIceberg."""
    source = est.foreign.pyiceberg().load_table((NS, name))
    destination = est.managed.pyiceberg().load_table((NS, name))
    pinned = source.current_snapshot()
    assert pinned is not None
    schema = source.schema()
    expected = spark_rows(est.spark, spark_table(est.foreign.name, name), schema, pinned.snapshot_id)
    assert expected, f"{name}: the source is empty, the comparison would prove nothing"
    assert spark_rows(est.spark, spark_table(est.managed.name, name), schema) == expected, f"{name}: Spark reads"
    assert pyiceberg_rows(destination, schema) == expected, f"{name}: PyIceberg reads"
    assert [f.field_id for f in destination.schema().fields] == [f.field_id for f in schema.fields]


def migrate_cli(est: Estate, mappings: list[dict[str, str]]) -> dict[str, Any]:
    # two workers scaffolding into one new namespace can race on PostgreSQL (a unique-key violation
    # instead of "already exists"); that is the scaffold's business, not what these tests examine
    est.managed.pyiceberg().create_namespace_if_not_exists(NS)
    config = est.write_config(mappings)
    result = CliRunner().invoke(app, ["migrate", "-c", str(config), "--json"])
    out = result.output
    assert "{" in out, f"exit {result.exit_code}: {out} {result.exception!r}"
    report: dict[str, Any] = json.loads(out[out.index("{") :])
    return {"exit_code": result.exit_code, **report}


@dataclass
class Migrated:
    est: Estate
    tables: dict[str, str]
    outcomes: dict[str, dict[str, Any]]
    strategies: dict[str, str]
    exit_code: int


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory, pg_server: str, spark: Any) -> Migrated:
    """The Spark-written estate, migrated once by the real ``icebridge migrate`` with the local engine."""
    est = make_estate(tmp_path_factory.mktemp("oracle"), pg_server, spark)
    tables = write_foreign_tables(est)
    f, m = est.foreign.name, est.managed.name
    report = migrate_cli(
        est,
        [
            {"source": f"{f}.{NS}.null_lists_rewrite", "target": f"{m}.{NS}", "strategy": "rewrite"},
            {"source": f"{f}.{NS}.*", "target": f"{m}.{NS}"},
        ],
    )
    store = open_store(est.state_url)
    try:
        strategies = {t.source.split(".")[-1]: t.strategy for t in store.list_tasks()}
    finally:
        store.close()
    outcomes = {o["source"].split(".")[-1]: o for o in report["tables"]}
    return Migrated(est, tables, outcomes, strategies, report["exit_code"])


def test_spark_written_tables_have_what_they_claim(migrated: Migrated) -> None:
    est = migrated.est
    mor = spark_table(est.foreign.name, "mor")
    deletes = est.sql(f"SELECT content, count(*) AS n FROM {mor}.delete_files GROUP BY content")
    assert [(r["content"], r["n"] > 0) for r in deletes] == [(1, True)]  # position deletes only
    assert len(est.foreign.pyiceberg().load_table((NS, "evolved")).metadata.partition_specs) == 2
    assert est.foreign.pyiceberg().load_table((NS, "v1")).metadata.format_version == 1


@pytest.mark.parametrize("name", ["mor", "evolved", "nested", "v1"])
def test_local_engine_copy_reads_back_identical_in_spark_and_pyiceberg(migrated: Migrated, name: str) -> None:
    outcome = migrated.outcomes[name]
    assert outcome["status"] == "succeeded", f"{name} ({migrated.tables[name]}): {outcome['message']}"
    assert_identical_everywhere(migrated.est, name)


def test_null_lists_of_structs_survive_file_copy_and_stop_rewrite(migrated: Migrated) -> None:
    """A NULL list<struct> stays NULL through file-copy; rewrite (which reads through PyIceberg) is refused."""
    est = migrated.est
    for name in NULL_STRUCT_LISTS:
        source = est.foreign.pyiceberg().load_table((NS, name))
        expected = spark_rows(est.spark, spark_table(est.foreign.name, name), source.schema())
        assert any(row[1] is None for row in expected) and any(row[1] == () for row in expected)
    copied = migrated.outcomes["null_lists"]
    assert migrated.strategies["null_lists"] == "file-copy"
    assert copied["status"] == "succeeded", copied["message"]
    schema = est.foreign.pyiceberg().load_table((NS, "null_lists")).schema()
    assert spark_rows(est.spark, spark_table(est.managed.name, "null_lists"), schema) == spark_rows(
        est.spark, spark_table(est.foreign.name, "null_lists"), schema
    )
    rewritten = migrated.outcomes["null_lists_rewrite"]
    assert migrated.strategies["null_lists_rewrite"] == "rewrite"
    assert rewritten["status"] == "failed" and "validation failed" in rewritten["message"], rewritten


def test_pyiceberg_reads_null_lists_of_structs_as_empty(migrated: Migrated) -> None:
    """The upstream defect behind the refusal above: PyIceberg 0.12 reads a NULL list<struct> as [].

    When this starts failing, PyIceberg has fixed it and rewrite can carry such tables again.
    """
    est = migrated.est
    source = est.foreign.pyiceberg().load_table((NS, "null_lists"))
    schema = source.schema()
    spark = spark_rows(est.spark, spark_table(est.foreign.name, "null_lists"), schema)
    pyiceberg = pyiceberg_rows(source, schema)
    nulls = [i for i, row in enumerate(spark) if row[1] is None]
    assert nulls and all(pyiceberg[i][1] == () for i in nulls)


def test_the_whole_run_reports_every_table(migrated: Migrated) -> None:
    assert set(migrated.outcomes) == set(migrated.tables) | set(NULL_STRUCT_LISTS)
    failed = {n for n, o in migrated.outcomes.items() if o["status"] != "succeeded"}
    assert migrated.exit_code == (1 if failed else 0)
