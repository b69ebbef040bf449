"""Levels 3 and 4 through ``SparkExecutors`` on the suite's local session give what the local path gives,
on the tables Spark writes: merge-on-read position deletes, partition evolution with a bucket, nested types,
a format-version 1 table. A file an executor cannot read fails the level, naming the file.

Each table is compared with itself (a byte copy of itself: every file pairs with itself), once by this
process's threads and once by the executors' Python workers, and the two results must agree in every detail
but where they ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from icebridge.errors import ValidationError
from icebridge.phases.validate import compare
from icebridge.validation.reader import SnapshotFiles
from icebridge.validation.spark_exec import SparkExecutors
from tests.spark.conftest import Estate
from tests.spark.test_oracle import NS, write_foreign_tables

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def _details(results: list[Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for r in results:
        details = json.loads(json.dumps(r.details))
        out[r.comparator] = {"passed": r.passed, "summary": r.summary, "executed_on": details.pop("executed_on", None)}
        out[r.comparator]["details"] = details
    return out


def test_the_executors_give_the_local_checksums_and_digests_on_tables_spark_wrote(estate: Estate) -> None:
    tables = write_foreign_tables(estate)
    executors = SparkExecutors(estate.spark, files_per_task=2)
    catalog = estate.foreign.pyiceberg()
    for name in tables:
        table = catalog.load_table((NS, name))
        snapshot = table.current_snapshot()
        assert snapshot is not None
        args: dict[str, Any] = {"byte_copy": True, "default_levels": (1, 2, 3), "levels": [4]}
        local = _details(compare(table, snapshot.snapshot_id, table, **args))
        remote = _details(compare(table, snapshot.snapshot_id, table, executors=executors, **args))
        for comparator in ("file-identity", "content-digest"):
            assert local[comparator]["passed"] and remote[comparator]["passed"], (name, comparator, remote)
            assert local[comparator]["executed_on"]["where"] == "this process"
            where = remote[comparator]["executed_on"]
            assert where["where"] == "spark executors" and where["master"].startswith("local"), where
            assert where["tasks"] >= 1 and where["workers"], where
            assert where["code"] == "shipped", where  # the Python workers imported the zip the driver added
            assert remote[comparator]["details"] == local[comparator]["details"], (name, comparator)
            assert remote[comparator]["summary"] == local[comparator]["summary"], (name, comparator)
        digest = remote["content-digest"]["details"]
        assert digest["source_rows"] == len(table.scan().to_arrow()), name
    mor = SnapshotFiles(catalog.load_table((NS, "mor")), None)
    assert mor.delete_files(), "the merge-on-read table has delete files, checked at level 3 and applied at level 4"


def test_a_file_an_executor_cannot_read_fails_the_level_naming_it(estate: Estate) -> None:
    write_foreign_tables(estate)
    table = estate.foreign.pyiceberg().load_table((NS, "v1"))
    snapshot = table.current_snapshot()
    assert snapshot is not None
    gone = sorted(t.data_file.file_path for t in SnapshotFiles(table, None).tasks)[0]
    Path(gone.removeprefix("file:")).unlink()  # this test's own table, written a moment ago
    executors = SparkExecutors(estate.spark)
    with pytest.raises(ValidationError, match="on a Spark executor") as caught:
        compare(table, snapshot.snapshot_id, table, byte_copy=True, default_levels=(1, 2, 3), executors=executors)
    assert gone in str(caught.value)


def test_validate_on_an_engine_that_cannot_validate_is_refused_before_any_run(estate: Estate) -> None:
    from typer.testing import CliRunner

    from icebridge.cli import app
    from icebridge.store import open_store

    config = estate.write_config(
        [{"source": f"{estate.foreign.name}.*.*", "target": f"{estate.managed.name}.{{namespace}}"}]
    )
    result = CliRunner().invoke(app, ["validate", "--engine", "databricks", "-c", str(config)])
    assert result.exit_code != 0
    assert "--engine databricks: validation runs on local or spark" in result.output
    assert "Traceback" not in result.output
    store = open_store(estate.state_url)
    try:
        assert store.list_runs() == []
    finally:
        store.close()
