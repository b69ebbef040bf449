"""Spark fixtures: one local SparkSession for the whole suite, and PostgreSQL catalogs both engines share.

Every test gets catalogs with names of its own: Spark loads a catalog once per session under its
name, so two tests reusing a name on different databases would see each other's catalog.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.engines.spark import RUNTIME_JAR_GLOB, SparkSettings, build_session, spark_catalog_conf
from tests.conftest import REPO_ROOT, fresh_pg_database

JARS_DIR = REPO_ROOT / "build" / "spark-jars"
SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
}


HERE = Path(__file__).resolve().parent
# pyspark 3.5 leaves the socket of every collect() to the garbage collector (its result-server
# connection is closed only through the file wrapper); warnings are errors, so this one leak of
# pyspark's own is ignored in this folder, where every test drives Spark
PYSPARK_SOCKET_LEAK = "ignore:unclosed <socket.socket:ResourceWarning"
# pyspark 3.5's Spark Connect client checks its dependencies' versions with distutils' deprecated LooseVersion
PYSPARK_DISTUTILS = "ignore::DeprecationWarning:pyspark.*"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.filterwarnings(PYSPARK_SOCKET_LEAK))
            item.add_marker(pytest.mark.filterwarnings(PYSPARK_DISTUTILS))


def spark_settings() -> dict[str, Any]:
    """The ``engines.spark`` section the tests write into icebridge.yaml."""
    return {"master": "local[2]", "driver_memory": "2g", "jars_dir": str(JARS_DIR), "conf": dict(SPARK_CONF)}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The suite's SparkSession (Iceberg runtime from build/spark-jars); the engines reuse it."""
    if not any(JARS_DIR.glob(RUNTIME_JAR_GLOB)):
        pytest.fail(f"{JARS_DIR} has no Iceberg Spark runtime jar: run `make spark-runtime` first", pytrace=False)
    # the Python workers of executor-side code (spark file-copy, validation on executors) run this interpreter
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = build_session(SparkSettings.model_validate(spark_settings()))
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@dataclass
class SharedCatalog:
    """One catalog on its own PostgreSQL database, seen by PyIceberg and Spark under the same name."""

    name: str
    props: dict[str, str]

    def pyiceberg(self) -> SqlCatalog:
        return SqlCatalog(self.name, **{k: v for k, v in self.props.items() if k != "type"})


@dataclass
class Estate:
    """A foreign and a managed catalog plus the files a migration needs."""

    root: Path
    foreign: SharedCatalog
    managed: SharedCatalog
    state_url: str
    spark: Any

    def write_config(self, mappings: list[dict[str, str]], **migrate: int) -> Path:
        config = {
            "state": self.state_url,
            "catalogs": {self.foreign.name: self.foreign.props, self.managed.name: self.managed.props},
            "mappings": mappings,
            "migrate": {"concurrency": 2, "backoff_seconds": 0.05, **migrate},
            "engines": {"spark": spark_settings()},
        }
        path = self.root / "icebridge.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return path

    def sql(self, statement: str) -> list[Any]:
        rows: list[Any] = self.spark.sql(statement).collect()
        return rows


def shared_catalog(root: Path, admin_url: str, role: str, spark: Any | None) -> SharedCatalog:
    """A catalog on a fresh PostgreSQL database; configured in ``spark`` too unless that is None (another process's)."""
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    warehouse = root / f"{role}-warehouse"
    warehouse.mkdir()
    # 'file:/…' is the one spelling both engines write alike (Spark turns 'file:///' into 'file:/' in
    # data file paths but keeps it in the table location, leaving a table with both)
    props = {
        "type": "sql",
        "uri": fresh_pg_database(admin_url, f"ib_spark_{role}_"),
        "warehouse": f"file:{warehouse}",
    }
    if spark is not None:
        for key, value in spark_catalog_conf(name, props).items():
            spark.conf.set(key, value)
    catalog = SharedCatalog(name, props)
    catalog.pyiceberg()  # creates PyIceberg's catalog tables first, so both sides use its schema
    return catalog


def make_estate(root: Path, admin_url: str, spark: Any) -> Estate:
    """Fresh foreign and managed PostgreSQL catalogs under ``root``, configured in ``spark``."""
    return Estate(
        root=root,
        foreign=shared_catalog(root, admin_url, "foreign", spark),
        managed=shared_catalog(root, admin_url, "managed", spark),
        state_url=f"sqlite:///{root}/state.db",
        spark=spark,
    )


@pytest.fixture
def estate(tmp_path: Path, pg_server: str, spark: Any) -> Estate:
    """Fresh foreign and managed PostgreSQL catalogs, configured in the suite's SparkSession."""
    return make_estate(tmp_path, pg_server, spark)
