"""Great Expectations 1.x checkpoints over the comparison results, with Data Docs next to the HTML report.

GX is not pointed at the data: IceBridge has already computed the metrics (per partition, source and
destination side by side: record, null, value and NaN counts, bounds, row digests). Those metric
tables are what GX validates, with ``expect_column_pair_values_to_be_equal`` on the source and
destination columns, one checkpoint per table, and Data Docs are built under ``report_dir/gx/``.

Needs the optional extra: ``pip install 'icebridge[gx]'``. Values are compared as their JSON text so
``-0.0``/``0.0``, NaN and null stay distinct.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icebridge.errors import TerminalError

if TYPE_CHECKING:
    from icebridge.validation.report import TableValidation

__all__ = ["GX_EXTRA", "SITE_FOLDER", "available", "metric_rows", "write_data_docs"]

GX_EXTRA = "pip install 'icebridge[gx]'"
_SITE = "icebridge"
SITE_FOLDER = "gx"  # the Data Docs site's folder inside the run's report folder
_COLUMNS = ["table", "level", "comparator", "partition", "metric", "source", "destination"]


def available() -> bool:
    """True when Great Expectations can be imported (the ``gx`` extra is installed)."""
    return importlib.util.find_spec("great_expectations") is not None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def metric_rows(table: TableValidation) -> list[dict[str, Any]]:
    """The metric table of one validated table: one row per (comparator, partition, metric), both sides."""
    rows = []
    for r in table.results:
        for m in r.details.get("metrics", []) or []:
            rows.append(
                {
                    "table": table.source,
                    "level": r.level,
                    "comparator": r.comparator,
                    "partition": str(m.get("partition", "")),
                    "metric": str(m.get("metric", "")),
                    "source": _text(m.get("source")),
                    "destination": _text(m.get("destination")),
                }
            )
    return rows


def _name(text: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "table"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name


def _import_gx() -> Any:
    if not available():
        raise TerminalError(f"Great Expectations reports need the 'gx' extra: {GX_EXTRA}")
    # GX's import probes optional integrations (Spark, SQL dialects) that emit deprecation noise
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import great_expectations as gx

    return gx


def write_data_docs(report_dir: Path, tables: Sequence[TableValidation]) -> Path | None:
    """Run one GX checkpoint per table over its metric table and build Data Docs in ``report_dir/gx``.

    Returns the Data Docs ``index.html``, or None when no table has metrics (nothing was compared).
    A checkpoint fails exactly where a source and a destination metric differ; the IceBridge report
    stays the verdict, GX gives the same evidence in its own format.

    Raises:
        TerminalError: Great Expectations is not installed (the message gives the pip command).
    """
    gx = _import_gx()
    import pandas as pd

    frames = [(t, metric_rows(t)) for t in tables]
    frames = [(t, rows) for t, rows in frames if rows]
    if not frames:
        return None
    site_dir = Path(report_dir) / SITE_FOLDER
    site_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.add_data_docs_site(
            site_name=_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        source = context.data_sources.add_pandas("icebridge_metrics")
        used: set[str] = set()
        for table, rows in frames:
            name = _name(table.source, used)
            asset = source.add_dataframe_asset(name)
            batch = asset.add_batch_definition_whole_dataframe("metrics")
            suite = context.suites.add(gx.ExpectationSuite(name=f"{name}.source_equals_destination"))
            suite.add_expectation(
                gx.expectations.ExpectColumnPairValuesToBeEqual(column_A="source", column_B="destination")
            )
            suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="metric"))
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(data=batch, suite=suite, name=f"{name}.validation")
            )
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{name}.checkpoint",
                    validation_definitions=[definition],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[_SITE])],
                    result_format="SUMMARY",
                )
            )
            checkpoint.run(batch_parameters={"dataframe": pd.DataFrame(rows, columns=_COLUMNS)})
    index = site_dir / "index.html"
    return index if index.exists() else None
