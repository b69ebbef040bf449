"""SQL generation, settings and catalog mapping of the spark engine (no JVM needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    FixedType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimeType,
    UUIDType,
)

from icebridge.config import Config, MigrateSettings, load_config
from icebridge.engines import load_engine
from icebridge.engines.spark import (
    SparkEngine,
    SparkSettings,
    render_script,
    session_jars,
    spark_catalog_conf,
)
from icebridge.engines.spark_sql import quote_identifier, quote_parts, quote_string, spark_type, table_name
from icebridge.errors import CatalogMappingError, ConfigError, EngineNotInstalledError, PlanError
from icebridge.model import Strategy, TableRef


def test_identifiers_are_backticked_with_backticks_doubled() -> None:
    assert quote_identifier("plain") == "`plain`"
    assert quote_identifier("a`b") == "`a``b`"
    assert quote_identifier("``") == "``````"
    assert quote_identifier("dotted.name with space") == "`dotted.name with space`"
    assert quote_identifier("Straße_ключ") == "`Straße_ключ`"
    assert quote_parts(("cat", "a.b", "t`")) == "`cat`.`a.b`.`t```"
    assert table_name(TableRef("cat", ("lvl1", "lvl 2"), "t")) == "`cat`.`lvl1`.`lvl 2`.`t`"


def test_string_literals_escape_quotes_and_backslashes() -> None:
    assert quote_string("it's") == "'it\\'s'"
    assert quote_string("a\\b") == "'a\\\\b'"


def test_nested_types_render_as_spark_ddl() -> None:
    struct = StructType(
        NestedField(1, "na`me", StringType(), required=True, doc="the name"),
        NestedField(2, "tags", ListType(3, StringType(), element_required=False), required=False),
        NestedField(4, "m", MapType(5, StringType(), 6, LongType(), value_required=False), required=False),
    )
    assert spark_type(struct) == (
        "STRUCT<`na``me`: STRING NOT NULL COMMENT 'the name', `tags`: ARRAY<STRING>, `m`: MAP<STRING, BIGINT>>"
    )


def test_a_type_spark_cannot_hold_names_the_column_and_the_fix() -> None:
    with pytest.raises(PlanError, match=r"cat\.ns\.t\.clock.*strategy rewrite"):
        spark_type(TimeType(), "cat.ns.t.clock")


@pytest.fixture
def memory_table(tmp_path: Path) -> Table:
    catalog = SqlCatalog("mem", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file:{tmp_path}/wh")
    catalog.create_namespace("ns")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "u", UUIDType(), required=False),
        NestedField(3, "f", FixedType(4), required=False),
        NestedField(4, "n", IntegerType(), required=False),
    )
    table = catalog.create_table("ns.t", schema, properties={"format-version": "1", "owner": "someone"})
    table.append(_arrow_rows())
    return table


def _arrow_rows() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1], pa.int64()),
            "u": pa.array([b"0123456789abcdef"], pa.binary(16)),
            "f": pa.array([b"abcd"], pa.binary(4)),
            "n": pa.array([2], pa.int32()),
        }
    )


def test_render_script_has_scaffold_copy_and_commented_sync(memory_table: Table) -> None:
    snapshot = memory_table.current_snapshot()
    assert snapshot is not None
    script = render_script(
        memory_table, TableRef("foreign", ("ns",), "t"), TableRef("managed", ("a", "b.c"), "t`x"), snapshot.snapshot_id
    )
    assert "CREATE NAMESPACE IF NOT EXISTS `managed`.`a`.`b.c`;" in script
    assert "CREATE TABLE IF NOT EXISTS `managed`.`a`.`b.c`.`t``x` (" in script
    assert "'format-version' = '2'" in script  # the destination is always v2
    assert "'owner'" not in script  # engine- and location-specific properties stay behind
    assert (
        f"INSERT INTO `managed`.`a`.`b.c`.`t``x`\nSELECT `id`, `u`, `f`, `n`\n"
        f"FROM `foreign`.`ns`.`t` VERSION AS OF {snapshot.snapshot_id};"
    ) in script
    assert "-- CALL `foreign`.system.create_changelog_view(" in script
    assert "note: uuid/fixed columns (u, f) are declared STRING/BINARY" in script
    assert "source format v1" in script


def test_render_script_without_a_snapshot_only_scaffolds(memory_table: Table) -> None:
    script = render_script(memory_table, TableRef("f", ("ns",), "t"), TableRef("m", ("ns",), "t"), None)
    assert "CREATE TABLE" in script
    assert "INSERT INTO" not in script


def write_config(tmp_path: Path, engines: dict[str, Any], catalogs: dict[str, Any] | None = None) -> Config:
    return load_config(write_config_file(tmp_path, engines, catalogs))


def write_config_file(tmp_path: Path, engines: dict[str, Any], catalogs: dict[str, Any] | None = None) -> Path:
    config = {
        "state": f"sqlite:///{tmp_path}/state.db",
        "catalogs": catalogs or {"src": {"type": "sql", "uri": f"sqlite:///{tmp_path}/c.db"}},
        "mappings": [{"source": f"{next(iter(catalogs or {'src': 0}))}.*.*", "target": "src.dst"}],
        "engines": engines,
    }
    path = tmp_path / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        ({"mastr": "local[1]"}, "engines.spark.mastr", "unknown key; allowed keys here: app_name, conf,"),
        ({"remote": "http://x:15002"}, "engines.spark.remote", "not a Spark Connect URL; write sc://"),
        ({"remote": "sc://x:15002", "master": "local[1]"}, "engines.spark.master", "either master"),
        ({"driver_memory": "lots"}, "engines.spark.driver_memory", "String should match pattern"),
        ({"conf": "x=1"}, "engines.spark.conf", "valid dictionary"),
    ],
)
def test_bad_spark_settings_name_the_key(tmp_path: Path, section: dict[str, Any], key: str, message: str) -> None:
    path = write_config_file(tmp_path, {"spark": section})
    with pytest.raises(ConfigError) as caught:  # the configuration is refused as it is read
        load_config(path)
    assert f"icebridge.yaml: {key}: " in str(caught.value)
    assert message in str(caught.value)
    config = Config(path, "sqlite://", {}, (), MigrateSettings(), engines={"spark": section})
    with pytest.raises(ConfigError) as again:  # and by the engine's own settings, as it is built
        SparkSettings.from_config(config)
    assert str(again.value) == str(caught.value)


def test_settings_defaults_and_relative_jars_dir(tmp_path: Path) -> None:
    assert SparkSettings.from_config(write_config(tmp_path, {})).master == "local[2]"
    settings = SparkSettings.from_config(write_config(tmp_path, {"spark": {"jars_dir": "jars", "conf": {"a": 1}}}))
    assert settings.jars_dir == tmp_path / "jars"
    assert settings.conf == {"a": "1"}


def test_missing_runtime_jars_say_how_to_build_them(tmp_path: Path) -> None:
    settings = SparkSettings(jars_dir=tmp_path / "nowhere")
    with pytest.raises(EngineNotInstalledError, match="run `make spark-runtime` first"):
        session_jars(settings)
    assert session_jars(SparkSettings(jars_dir=tmp_path, conf={"spark.jars.packages": "x:y:1"})) == []
    assert session_jars(SparkSettings(remote="sc://h:15002")) == []


def test_postgresql_sql_catalog_becomes_a_jdbc_catalog_on_the_same_database() -> None:
    conf = spark_catalog_conf(
        "managed",
        {
            "type": "sql",
            "uri": "postgresql+psycopg2://ice:s3cret@db.internal:5433/catalog?sslmode=require",
            "warehouse": "file:/lake/managed",
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        },
    )
    assert conf == {
        "spark.sql.catalog.managed": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.managed.type": "jdbc",
        "spark.sql.catalog.managed.jdbc.schema-version": "V1",
        "spark.sql.catalog.managed.uri": "jdbc:postgresql://db.internal:5433/catalog?sslmode=require",
        "spark.sql.catalog.managed.jdbc.user": "ice",
        "spark.sql.catalog.managed.jdbc.password": "s3cret",
        "spark.sql.catalog.managed.warehouse": "file:/lake/managed",
        "spark.sql.catalog.managed.cache-enabled": "false",
    }


def test_other_catalog_types_map_or_say_why_not(tmp_path: Path) -> None:
    sqlite = spark_catalog_conf("s", {"type": "sql", "uri": f"sqlite:///{tmp_path}/c.db"})
    assert sqlite["spark.sql.catalog.s.uri"] == f"jdbc:sqlite:{tmp_path}/c.db"
    rest = spark_catalog_conf("r", {"uri": "https://rest.example/api", "warehouse": "wh", "credential": "a:b"})
    assert (rest["spark.sql.catalog.r.type"], rest["spark.sql.catalog.r.credential"]) == ("rest", "a:b")
    hive = spark_catalog_conf("h", {"type": "hive", "uri": "thrift://hms:9083"})
    assert hive["spark.sql.catalog.h.uri"] == "thrift://hms:9083"
    glue = spark_catalog_conf("g", {"type": "glue", "glue.region": "eu-west-1"})
    assert glue["spark.sql.catalog.g.client.region"] == "eu-west-1"
    with pytest.raises(CatalogMappingError, match=r"catalogs\.x: type 'in-memory' .* engines\.spark\.conf"):
        spark_catalog_conf("x", {"type": "in-memory"})
    with pytest.raises(CatalogMappingError, match=r"catalogs\.m\.uri: .*'mysql'"):
        spark_catalog_conf("m", {"type": "sql", "uri": "mysql+pymysql://u@h/db"})
    with pytest.raises(CatalogMappingError, match="in-memory SQLite"):
        spark_catalog_conf("mem", {"type": "sql", "uri": "sqlite:///:memory:"})


def test_registry_builds_the_spark_engine(tmp_path: Path) -> None:
    engine = load_engine("spark", write_config(tmp_path, {"spark": {"master": "local[1]"}}))
    assert isinstance(engine, SparkEngine)
    assert Strategy.SPARK_SQL in engine.strategies
    assert engine.settings.master == "local[1]"


def test_a_catalog_spark_has_no_mapping_for_is_a_preflight_blocker(tmp_path: Path) -> None:
    from icebridge.catalogs import Catalogs
    from icebridge.model import PlanItem

    catalogs = {
        "src": {"type": "sql", "uri": f"sqlite:///{tmp_path}/c.db", "warehouse": f"file://{tmp_path}/wh"},
        "mem": {"type": "in-memory"},
    }
    config = write_config(tmp_path, {"spark": {"master": "local[1]"}}, catalogs=catalogs)
    engine = SparkEngine(config)
    item = PlanItem(TableRef("mem", ("ns",), "t"), TableRef("src", ("dst",), "t"), Strategy.SPARK_SQL, "")
    findings = engine.preflight([item], Catalogs(config))
    assert [(f.table, f.code) for f in findings] == [("mem.ns.t", "spark-catalog-unmapped")]
    assert "catalogs.mem: type 'in-memory'" in findings[0].message
    assert list((tmp_path / "wh").iterdir()) == []  # the destination storage was probed and left clean
