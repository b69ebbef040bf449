"""``register`` of a table Spark wrote with merge-on-read deletes: Spark, Iceberg's reference implementation,
reads the destination's own metadata (IceBridge's manifests, delete manifests included) exactly as the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from icebridge.cli import app
from icebridge.engines.spark_sql import quote_parts
from tests.spark.conftest import PYSPARK_DISTUTILS, PYSPARK_SOCKET_LEAK, Estate, estate, spark  # noqa: F401
from tests.spark.oracle import pyiceberg_rows, spark_rows

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.filterwarnings(PYSPARK_SOCKET_LEAK),
    pytest.mark.filterwarnings(PYSPARK_DISTUTILS),
]


def test_spark_reads_a_registered_merge_on_read_table_as_the_source(estate: Estate) -> None:  # noqa: F811
    f, m = estate.foreign.name, estate.managed.name
    estate.sql(f"CREATE NAMESPACE {quote_parts((f, 'shop'))}")
    mor = quote_parts((f, "shop", "mor"))
    estate.sql(
        f"CREATE TABLE {mor} (id BIGINT, region STRING) USING iceberg PARTITIONED BY (region) "
        "TBLPROPERTIES ('format-version' = '2', 'write.delete.mode' = 'merge-on-read', "
        "'write.update.mode' = 'merge-on-read')"
    )
    estate.sql(f"INSERT INTO {mor} SELECT id, IF(id % 2 = 0, 'eu', 'us') FROM range(200)")
    estate.sql(f"DELETE FROM {mor} WHERE id % 7 = 0")  # position delete files
    estate.sql(f"INSERT INTO {mor} SELECT id, 'eu' FROM range(200, 230)")  # data newer than the deletes
    estate.sql(f"UPDATE {mor} SET region = 'us' WHERE id = 210")  # a delete and an insert in one commit
    deletes = estate.sql(f"SELECT count(*) AS n FROM {mor}.delete_files")[0]["n"]
    assert deletes > 0

    config = estate.write_config(
        [{"source": f"{f}.shop.*", "target": f"{m}.shop", "strategy": "register"}], concurrency=1
    )
    result = CliRunner().invoke(app, ["migrate", "-c", str(config)])
    assert result.exit_code == 0, result.output

    source = estate.foreign.pyiceberg().load_table(("shop", "mor"))
    destination = estate.managed.pyiceberg().load_table(("shop", "mor"))
    schema = source.schema()
    expected = spark_rows(estate.spark, mor, schema)
    assert len(expected) == 200 - 29 + 30
    estate.sql(f"REFRESH TABLE {quote_parts((m, 'shop', 'mor'))}")
    assert spark_rows(estate.spark, quote_parts((m, "shop", "mor")), schema) == expected
    assert pyiceberg_rows(destination, schema) == expected
    files = estate.sql(f"SELECT file_path FROM {quote_parts((m, 'shop', 'mor'))}.all_files")
    assert {r["file_path"] for r in files} == {
        r["file_path"] for r in estate.sql(f"SELECT file_path FROM {mor}.files")
    }  # the destination's files are the source's, delete files included
    written = list(Path(destination.metadata.location.removeprefix("file:")).rglob("*.parquet"))
    assert written == []
