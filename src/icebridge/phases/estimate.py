"""Estimates: how long the plan's copies take and what they cost on each engine, from rates measured here.

Two rates are measured on this deployment, never assumed: a **byte copy** (file-copy: bytes read and
written, nothing decoded) and a **rewrite** (read, decode, re-encode; one stream on one core). Both come
from the batches committed earlier (each checkpoint keeps its seconds), else from a probe of real source
files (``plan.probe_throughput``). Every engine's estimate is one of them carried to that engine's
compute, and says so in its basis:

- ``local``: each table at its strategy's rate, ``migrate.concurrency`` tables at once;
- ``spark`` with N executors of C cores: spark-sql rewrites every table, one stream per core, so the
  rewrite rate × N × C (or, once spark-sql batches were committed here, their rate per configured core);
- ``databricks`` with W workers of C cores: the rewrite rate × W × C (Photon's speed-up is not assumed);
- ``notebook``: the ad-hoc way — one process reads each table whole and writes it again, one table
  after another: the rewrite rate on one core, while the cluster it runs on is billed whole.

Costs are shown only where ``estimates`` in the configuration gives prices; a notebook's saving is
against the best priced engine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.model import PlanItem, Strategy, Throughput

if TYPE_CHECKING:
    from icebridge.config import EstimateSettings

ENGINES = ("local", "spark", "databricks", "notebook")
SPARK_SQL = "spark-sql"
DATABRICKS = "databricks"


class EngineEstimate(BaseModel):
    """The whole plan on one engine: wall-clock seconds, compute cost, and what the figures rest on."""

    model_config = ConfigDict(frozen=True)

    engine: str
    compute: str = Field(description="The compute assumed, e.g. '2 executors × 1 core'.")
    seconds: float | None
    cost: float | None = Field(description="In the configuration's currency; None when no price is configured.")
    currency: str
    basis: str
    saving_vs_notebook: float | None = Field(
        default=None, description="1 - cost / the notebook way's cost, when both are priced."
    )


class TableEstimates(BaseModel):
    """One table's copy seconds on each engine."""

    model_config = ConfigDict(frozen=True)

    source: str
    bytes_to_move: int
    seconds: dict[str, float | None]


class Estimates(BaseModel):
    """Per table and in total, on every engine."""

    model_config = ConfigDict(frozen=True)

    engines: list[EngineEstimate]
    tables: list[TableEstimates]


def _rate(rates: dict[str, Throughput], strategy: str) -> Throughput | None:
    rate = rates.get(strategy)
    return rate if rate is not None and rate.bytes_per_second > 0 else None


def estimate(
    items: Sequence[PlanItem],
    rates: dict[str, Throughput],
    settings: EstimateSettings,
    concurrency: int,
) -> Estimates:
    """Every engine's duration and cost for ``items`` (blocked ones left out), from ``rates`` measured here.

    ``rates`` maps a strategy (``file-copy``, ``rewrite``, and ``spark-sql`` or ``databricks`` once their
    batches were committed here) to its measured bytes per second.
    """
    todo = [i for i in items if not i.blocked]
    byte_copy, rewrite = _rate(rates, Strategy.FILE_COPY), _rate(rates, Strategy.REWRITE)
    local_spec, spark, dbx = settings.local, settings.spark, settings.databricks
    cores = local_spec.cores or os.cpu_count() or 1
    spark_cores = spark.executors * spark.cores_per_executor
    dbx_cores = dbx.workers * dbx.cores_per_worker
    per_core = rewrite.bytes_per_second if rewrite else None
    measured = rewrite.basis if rewrite else "no rewrite rate measured yet"
    # a cluster engine's own batches committed here, when there are some, say more than the carried rate
    spark_own, dbx_own = _rate(rates, SPARK_SQL), _rate(rates, DATABRICKS)

    tables: list[TableEstimates] = []
    per_engine: dict[str, list[float | None]] = {e: [] for e in ENGINES}
    for item in todo:
        local = byte_copy if str(item.strategy) == Strategy.FILE_COPY else rate_for(rates, str(item.strategy))
        size = item.bytes_to_move
        seconds = {
            "local": _secs(size, local.bytes_per_second if local else None),
            "spark": _secs(size, spark_own.bytes_per_second if spark_own else _times(per_core, spark_cores)),
            "databricks": _secs(size, dbx_own.bytes_per_second if dbx_own else _times(per_core, dbx_cores)),
            "notebook": _secs(size, per_core),
        }
        for engine, value in seconds.items():
            per_engine[engine].append(value)
        tables.append(TableEstimates(source=str(item.source), bytes_to_move=size, seconds=seconds))
    total_bytes = sum(i.bytes_to_move for i in todo)

    local_total = _wall(per_engine["local"], concurrency)
    spark_total = (
        _wall(per_engine["spark"], concurrency) if spark_own else _secs(total_bytes, _times(per_core, spark_cores))
    )
    dbx_total = (
        _wall(per_engine["databricks"], concurrency) if dbx_own else _secs(total_bytes, _times(per_core, dbx_cores))
    )
    notebook_total = _secs(total_bytes, per_core)
    carried = f"the rewrite rate measured here ({measured}) per core × {{cores}} cores"
    spark_basis = spark_own.basis if spark_own else carried.format(cores=spark_cores)
    dbx_basis = dbx_own.basis if dbx_own else carried.format(cores=dbx_cores) + "; no Photon speed-up assumed"
    currency = settings.currency
    dbx_hourly = _dbx_hourly(settings)
    local_hourly = local_spec.price_per_core_hour * cores if local_spec.price_per_core_hour is not None else None
    spark_hourly = (
        spark.price_per_executor_hour * spark.executors if spark.price_per_executor_hour is not None else None
    )
    # the notebook runs on the Databricks cluster when one is priced, else on this machine
    notebook_hourly = dbx_hourly if dbx_hourly is not None else local_hourly
    notebook_on = f"{dbx.workers} workers billed" if dbx_hourly is not None else f"this machine ({cores} cores) billed"
    out = [
        EngineEstimate(
            engine="local",
            compute=f"this machine, {cores} cores, {concurrency} tables at once",
            seconds=local_total,
            cost=_cost(local_total, local_hourly),
            currency=currency,
            basis="; ".join(f"{k}: {v.basis}" for k, v in sorted(rates.items())) or "no rate measured yet",
        ),
        EngineEstimate(
            engine="spark",
            compute=f"{spark.executors} executors × {spark.cores_per_executor} cores",
            seconds=spark_total,
            cost=_cost(spark_total, spark_hourly),
            currency=currency,
            basis=spark_basis,
        ),
        EngineEstimate(
            engine="databricks",
            compute=f"{dbx.workers} workers × {dbx.cores_per_worker} cores",
            seconds=dbx_total,
            cost=_cost(dbx_total, dbx_hourly),
            currency=currency,
            basis=dbx_basis,
        ),
        EngineEstimate(
            engine="notebook",
            compute=f"one process on one core, tables one after another; {notebook_on}",
            seconds=notebook_total,
            cost=_cost(notebook_total, notebook_hourly),
            currency=currency,
            basis=f"the rewrite rate measured here ({measured}) on one core",
        ),
    ]
    notebook_cost = out[-1].cost
    if notebook_cost:
        out = [
            e.model_copy(update={"saving_vs_notebook": 1 - e.cost / notebook_cost})
            if e.engine != "notebook" and e.cost is not None
            else e
            for e in out
        ]
    return Estimates(engines=out, tables=tables)


def rate_for(rates: dict[str, Throughput], strategy: str) -> Throughput | None:
    """The measured rate of a local strategy; a strategy run elsewhere (spark-sql, databricks) rewrites."""
    return _rate(rates, strategy) or _rate(rates, Strategy.REWRITE)


def _dbx_hourly(settings: EstimateSettings) -> float | None:
    dbx = settings.databricks
    if dbx.price_per_dbu is None or dbx.dbu_per_worker_hour is None:
        return None
    dbu = dbx.workers * dbx.dbu_per_worker_hour + (dbx.dbu_per_driver_hour or 0.0)
    return dbu * dbx.price_per_dbu


def _times(rate: float | None, cores: int) -> float | None:
    return rate * cores if rate else None


def _secs(size: int, rate: float | None) -> float | None:
    if not size:
        return 0.0
    return size / rate if rate else None


def _wall(seconds: list[float | None], concurrency: int) -> float | None:
    if any(s is None for s in seconds):
        return None
    known = [s for s in seconds if s is not None]
    return max(sum(known) / concurrency, max(known)) if known else 0.0


def _cost(seconds: float | None, hourly: float | None) -> float | None:
    if seconds is None or hourly is None:
        return None
    return seconds / 3600 * hourly
