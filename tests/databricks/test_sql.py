"""SQL text and the job script of the databricks engine (no workspace needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from icebridge.engines import databricks_sql as dsql
from icebridge.errors import TerminalError

pytestmark = pytest.mark.databricks

ODD = dsql.UcTable("uc.foreign", "sales team", "or`ders-ünïcødé")


def test_identifiers_are_backticked_with_backticks_doubled() -> None:
    assert dsql.quote_identifier("plain") == "`plain`"
    assert dsql.quote_identifier("a.b c") == "`a.b c`"
    assert dsql.quote_identifier("x`y``z") == "`x``y````z`"
    assert dsql.quote_identifier("Ölçü_表") == "`Ölçü_表`"
    assert ODD.sql == "`uc.foreign`.`sales team`.`or``ders-ünïcødé`"
    with pytest.raises(TerminalError):
        dsql.quote_identifier("")


def test_string_literals_escape_quotes_and_backslashes() -> None:
    assert dsql.quote_string("it's a \\ path") == "'it\\'s a \\\\ path'"


def test_statements_for_odd_names() -> None:
    dst = dsql.UcTable("main", "sales", "orders copy")
    props = {dsql.TASK_PROPERTY: "foreign.sales.or`ders", dsql.SNAPSHOT_PROPERTY: "42"}
    assert dsql.enable_predictive_optimization(dst) == "ALTER SCHEMA `main`.`sales` ENABLE PREDICTIVE OPTIMIZATION"
    assert dsql.deep_clone(ODD, dst, 42, props, replace=False) == (
        "CREATE TABLE IF NOT EXISTS `main`.`sales`.`orders copy` DEEP CLONE "
        "`uc.foreign`.`sales team`.`or``ders-ünïcødé` VERSION AS OF 42 "
        "TBLPROPERTIES ('icebridge.source-snapshot-id' = '42', 'icebridge.task' = 'foreign.sales.or`ders')"
    )
    assert dsql.deep_clone(ODD, dst, None, {}, replace=True).startswith(
        "CREATE OR REPLACE TABLE `main`.`sales`.`orders copy` DEEP CLONE `uc.foreign`.`sales team`.`or``ders-ünïcødé` "
    )
    assert dsql.ctas(ODD, dst, 7, {"k": "v"}, replace=False) == (
        "CREATE TABLE IF NOT EXISTS `main`.`sales`.`orders copy` USING ICEBERG TBLPROPERTIES ('k' = 'v') "
        "AS SELECT * FROM `uc.foreign`.`sales team`.`or``ders-ünïcødé` VERSION AS OF 7"
    )
    assert dsql.ctas(ODD, dst, None, {}, replace=True, partition_columns=["région", "a`b"]) == (
        "CREATE OR REPLACE TABLE `main`.`sales`.`orders copy` USING ICEBERG PARTITIONED BY (`région`, `a``b`) "
        "TBLPROPERTIES () AS SELECT * FROM `uc.foreign`.`sales team`.`or``ders-ünïcødé`"
    )


def test_ctas_partition_columns_drop_transforms_and_void_fields() -> None:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import (
        BucketTransform,
        IdentityTransform,
        MonthTransform,
        TruncateTransform,
        VoidTransform,
    )
    from pyiceberg.types import DateType, LongType, NestedField, StringType, StructType

    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "d", DateType(), required=False),
        NestedField(3, "st", StructType(NestedField(4, "k", StringType(), required=False)), required=False),
        NestedField(5, "name", StringType(), required=False),
    )
    spec = PartitionSpec(
        PartitionField(2, 1000, MonthTransform(), "d_month"),
        PartitionField(4, 1001, TruncateTransform(3), "k_trunc"),  # nested source: not a column reference
        PartitionField(1, 1002, BucketTransform(16), "id_bucket"),
        PartitionField(5, 1003, VoidTransform(), "dropped"),
        PartitionField(2, 1004, IdentityTransform(), "d_again"),
    )
    assert dsql.partition_columns(schema, spec) == ["d", "id"]


def test_unity_catalog_name_rules() -> None:
    assert dsql.UcTable("main", "sales", "orders_ü").creatable_problem() is None
    assert "'.'" in (dsql.UcTable("main", "sales", "a.b").creatable_problem() or "")
    assert "' '" in (dsql.UcTable("main", "sa les", "t").creatable_problem() or "")
    assert dsql.uc_name_problem("x" * 256) == "the name is longer than 255 characters"


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def asDict(self) -> dict[str, Any]:  # noqa: N802 - PySpark's name
        return self._values


class _SparkError(Exception):
    def getErrorClass(self) -> str:  # noqa: N802 - PySpark's name
        return "UNSUPPORTED_FEATURE.CLONE_SOURCE"

    def getSqlState(self) -> str:  # noqa: N802 - PySpark's name
        return "0AKDC"


class _FakeSpark:
    """Stands in for a SparkSession: records SQL, fails any statement containing ``fail_on``."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.executed: list[str] = []

    def sql(self, text: str) -> _FakeSpark:
        self.executed.append(text)
        if self.fail_on and self.fail_on in text:
            raise _SparkError("[UNSUPPORTED_FEATURE.CLONE_SOURCE] DEEP CLONE of this source is not supported")
        return self

    def collect(self) -> list[_Row]:
        return [_Row({"num_copied_files": 3})]


def _script() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "icebridge_job"}
    exec(compile(dsql.JOB_SCRIPT, "icebridge_copy.py", "exec"), namespace)
    return namespace


def test_job_script_runs_statements_in_order_and_reports_success() -> None:
    plan = json.loads(dsql.job_parameter([("enable-predictive-optimization", "ALTER 1"), ("clone", "CREATE 2")]))
    spark = _FakeSpark()
    result, exc = _script()["run"](spark, plan)
    assert exc is None
    assert spark.executed == ["ALTER 1", "CREATE 2"]
    assert result == {
        "ok": True,
        "done": [
            {"step": "enable-predictive-optimization", "metrics": {"num_copied_files": "3"}},
            {"step": "clone", "metrics": {"num_copied_files": "3"}},
        ],
    }
    assert _script()["MARKER"] == dsql.RESULT_MARKER


def test_job_script_reports_the_failing_step_with_error_class_and_sqlstate() -> None:
    plan = json.loads(dsql.job_parameter([("enable-predictive-optimization", "ALTER"), ("clone", "CREATE DEEP")]))
    result, exc = _script()["run"](_FakeSpark(fail_on="DEEP"), plan)
    assert isinstance(exc, _SparkError)
    assert result["ok"] is False
    assert result["step"] == "clone"
    assert result["error_class"] == "UNSUPPORTED_FEATURE.CLONE_SOURCE"
    assert result["sqlstate"] == "0AKDC"
    assert [d["step"] for d in result["done"]] == ["enable-predictive-optimization"]
