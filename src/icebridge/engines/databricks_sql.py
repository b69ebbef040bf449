"""Databricks SQL text for the ``databricks`` engine, and the script its job runs on the cluster.

Nothing here talks to a workspace: identifiers and literals are quoted here and only here, so the
quoting rules can be tested without one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from icebridge.errors import TerminalError

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema

# Unity Catalog refuses these characters in the names of objects it creates.
_UC_FORBIDDEN = set("./ ") | {chr(c) for c in range(0x20)} | {"\x7f"}

TASK_PROPERTY = "icebridge.task"
SNAPSHOT_PROPERTY = "icebridge.source-snapshot-id"
MODE_PROPERTY = "icebridge.copy-mode"

# Printed by the job script before it exits; IceBridge reads the last such line from the run's logs.
RESULT_MARKER = "ICEBRIDGE-RESULT "


def quote_identifier(name: str) -> str:
    """``name`` as a Databricks SQL identifier: in backticks, backticks inside doubled."""
    if not name:
        raise TerminalError("an empty name cannot be a Databricks identifier")
    if "\x00" in name:
        raise TerminalError(f"{name!r}: a NUL character cannot appear in a Databricks identifier")
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """``value`` as a Databricks SQL string literal (backslash is an escape character there)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def uc_name_problem(name: str) -> str | None:
    """Why Unity Catalog would refuse to create an object called ``name``, or None."""
    if not name:
        return "the name is empty"
    if len(name) > 255:
        return "the name is longer than 255 characters"
    bad = sorted({c for c in name if c in _UC_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"Unity Catalog names cannot contain {shown}"
    return None


@dataclass(frozen=True)
class UcTable:
    """A Unity Catalog table: ``catalog.schema.table``."""

    catalog: str
    schema: str
    table: str

    @property
    def sql(self) -> str:
        """The quoted three-part name for SQL text."""
        return ".".join(quote_identifier(p) for p in (self.catalog, self.schema, self.table))

    @property
    def schema_sql(self) -> str:
        return ".".join(quote_identifier(p) for p in (self.catalog, self.schema))

    @property
    def full_name(self) -> str:
        """The dotted name the REST APIs take (``catalog.schema.table``)."""
        return f"{self.catalog}.{self.schema}.{self.table}"

    @property
    def schema_full_name(self) -> str:
        return f"{self.catalog}.{self.schema}"

    def creatable_problem(self) -> str | None:
        """Why Unity Catalog would refuse to create this table, or None."""
        for kind, part in (("catalog", self.catalog), ("schema", self.schema), ("table", self.table)):
            problem = uc_name_problem(part)
            if problem:
                return f"{kind} {part!r}: {problem}"
        return None


def properties_clause(properties: dict[str, str]) -> str:
    """``TBLPROPERTIES (...)`` with every key and value quoted as a string literal."""
    items = ", ".join(f"{quote_string(k)} = {quote_string(v)}" for k, v in sorted(properties.items()))
    return f"TBLPROPERTIES ({items})"


def _source(src: UcTable, snapshot_id: int | None) -> str:
    return src.sql if snapshot_id is None else f"{src.sql} VERSION AS OF {int(snapshot_id)}"


def enable_predictive_optimization(dst: UcTable) -> str:
    """DEEP CLONE into a managed Iceberg table requires predictive optimization on the target schema."""
    return f"ALTER SCHEMA {dst.schema_sql} ENABLE PREDICTIVE OPTIMIZATION"


def deep_clone(src: UcTable, dst: UcTable, snapshot_id: int | None, properties: dict[str, str], replace: bool) -> str:
    """``CREATE TABLE IF NOT EXISTS dst DEEP CLONE src`` (``CREATE OR REPLACE`` for IceBridge's empty scaffold)."""
    head = f"CREATE OR REPLACE TABLE {dst.sql}" if replace else f"CREATE TABLE IF NOT EXISTS {dst.sql}"
    return f"{head} DEEP CLONE {_source(src, snapshot_id)} {properties_clause(properties)}"


def ctas(
    src: UcTable,
    dst: UcTable,
    snapshot_id: int | None,
    properties: dict[str, str],
    replace: bool,
    partition_columns: Sequence[str] = (),
) -> str:
    """The fallback: ``CREATE TABLE dst USING ICEBERG [PARTITIONED BY (cols)] AS SELECT * FROM src``.

    Managed Iceberg tables take only plain column references in ``PARTITIONED BY`` (Unity Catalog keeps
    them as clustering keys and as the Iceberg partition spec), so ``partition_columns`` are the source
    spec's columns with their transforms dropped (:func:`partition_columns`).
    """
    head = f"CREATE OR REPLACE TABLE {dst.sql}" if replace else f"CREATE TABLE IF NOT EXISTS {dst.sql}"
    partitioned = (
        f"PARTITIONED BY ({', '.join(quote_identifier(c) for c in partition_columns)}) " if partition_columns else ""
    )
    return (
        f"{head} USING ICEBERG {partitioned}{properties_clause(properties)} "
        f"AS SELECT * FROM {_source(src, snapshot_id)}"
    )


def partition_columns(schema: Schema, spec: PartitionSpec) -> list[str]:
    """The top-level source columns of ``spec``'s fields, in order and once each.

    Void fields and fields over nested columns are skipped (neither is a plain column reference).
    """
    top = {f.field_id: f.name for f in schema.fields}
    out: list[str] = []
    for pf in spec.fields:
        name = top.get(pf.source_id)
        if name is not None and str(pf.transform) != "void" and name not in out:
            out.append(name)
    return out


def job_parameter(statements: list[tuple[str, str]]) -> str:
    """The single command-line argument of the job script: the statements to run, in order, by step name."""
    return json.dumps({"statements": [{"step": step, "sql": sql} for step, sql in statements]}, ensure_ascii=True)


# The script a one-time run executes on its Photon job cluster (a spark_python_task). It runs the
# statements in order and prints one result line, so IceBridge learns which step failed and the
# error class and SQLSTATE Spark reported, without reading free-text logs. ``run`` takes the session
# as an argument so the same code is exercised by the tests with a stand-in session.
JOB_SCRIPT = '''\
"""IceBridge copy job: runs the statements given as argv[1] (JSON) in order on this cluster."""

import json
import sys

MARKER = "ICEBRIDGE-RESULT "


def _error(exc):
    def call(name):
        fn = getattr(exc, name, None)
        try:
            return fn() if callable(fn) else None
        except Exception:
            return None

    return {
        "error_class": call("getCondition") or call("getErrorClass"),
        "sqlstate": call("getSqlState"),
        "message": str(exc)[:4000],
        "exception": type(exc).__name__,
    }


def run(spark, plan):
    done = []
    for item in plan["statements"]:
        try:
            rows = spark.sql(item["sql"]).collect()
        except Exception as exc:
            return {"ok": False, "step": item["step"], "done": done, **_error(exc)}, exc
        first = rows[0].asDict() if rows else {}
        done.append({"step": item["step"], "metrics": {k: str(v) for k, v in first.items()}})
    return {"ok": True, "done": done}, None


def main(argv):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    result, exc = run(spark, json.loads(argv[1]))
    print(MARKER + json.dumps(result), flush=True)
    if exc is not None:
        raise exc


if __name__ == "__main__":
    main(sys.argv)
'''
