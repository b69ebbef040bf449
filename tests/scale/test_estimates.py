"""The plan says how long and how much on each engine, from rates measured here; status shows estimate vs actual."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration import estate
from tests.integration.test_behaviour import Estate

PRICES = {
    "currency": "EUR",
    "local": {"cores": 2, "price_per_core_hour": 0.05},
    "spark": {"executors": 3, "cores_per_executor": 2, "price_per_executor_hour": 0.4},
    "databricks": {
        "workers": 4,
        "cores_per_worker": 8,
        "dbu_per_worker_hour": 2.0,
        "dbu_per_driver_hour": 1.0,
        "price_per_dbu": 0.15,
    },
}


def make(tmp_path: Path, estimates: dict | None = None) -> Estate:  # type: ignore[type-arg]
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = estate.catalog_props("sqlite", tmp_path, "managed")
    estate.build(estate.open_catalog("foreign", foreign))
    state = f"sqlite:///{tmp_path}/state.db"
    config = estate.write_config(tmp_path, state, foreign, managed)
    if estimates is not None:
        doc = yaml.safe_load(config.read_text())
        doc["estimates"] = estimates
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Estate(tmp_path, config, state, foreign, managed)


def test_plan_estimates_every_engine_from_measured_rates_with_costs(tmp_path: Path) -> None:
    est = make(tmp_path, PRICES)
    code, plan = est.cli_json("plan")
    assert code == 0, plan
    engines = {e["engine"]: e for e in plan["estimates"]["engines"]}
    assert set(engines) == {"local", "spark", "databricks", "notebook"}
    rewrite = plan["throughput"]["rewrite"]["bytes_per_second"]
    total = plan["bytes_to_move"]
    # a cluster's estimate is the rate measured here carried to its cores, and says so
    assert engines["spark"]["seconds"] == pytest.approx(total / (rewrite * 6))
    assert engines["databricks"]["seconds"] == pytest.approx(total / (rewrite * 32))
    assert engines["notebook"]["seconds"] == pytest.approx(total / rewrite)
    assert "per core × 6 cores" in engines["spark"]["basis"] and "probe" in engines["spark"]["basis"]
    # costs from the configured prices: hours × price of the compute billed
    dbx_hourly = (4 * 2.0 + 1.0) * 0.15
    assert engines["databricks"]["cost"] == pytest.approx(engines["databricks"]["seconds"] / 3600 * dbx_hourly)
    assert engines["spark"]["cost"] == pytest.approx(engines["spark"]["seconds"] / 3600 * 3 * 0.4)
    assert engines["local"]["cost"] == pytest.approx(engines["local"]["seconds"] / 3600 * 2 * 0.05)
    # the notebook runs on the priced cluster, billed whole while one core works
    assert engines["notebook"]["cost"] == pytest.approx(engines["notebook"]["seconds"] / 3600 * dbx_hourly)
    assert engines["databricks"]["saving_vs_notebook"] == pytest.approx(1 - 1 / 32)
    assert all(e["currency"] == "EUR" for e in engines.values())
    per_table = {t["source"]: t for t in plan["estimates"]["tables"]}
    assert set(per_table) == {t["source"] for t in plan["tables"] if not t["blocked"]}
    for table in plan["tables"]:
        assert per_table[table["source"]]["seconds"]["local"] == pytest.approx(table["estimate_seconds"])
    code, text = est.cli("plan")
    assert code == 0 and "On each engine" in text and "EUR" in text and "less" in text


def test_without_prices_the_plan_shows_durations_and_no_cost(tmp_path: Path) -> None:
    est = make(tmp_path)
    code, plan = est.cli_json("plan")
    assert code == 0
    engines = {e["engine"]: e for e in plan["estimates"]["engines"]}
    assert all(e["seconds"] is not None and e["cost"] is None for e in engines.values())
    code, text = est.cli("plan")
    assert "no price configured" in text


def test_status_shows_the_estimate_against_the_actual_copy(tmp_path: Path) -> None:
    est = make(tmp_path)
    code, plan = est.cli_json("plan")
    assert code == 0
    code, report = est.cli_json("migrate")
    assert code == 0, report
    code, status = est.cli_json("status")
    assert code == 0
    copied = [t for t in status["tables"] if t["bytes"]]
    assert copied
    for table in copied:
        assert table["estimate_seconds"] is not None and table["estimate_engine"] == "local"
        assert table["copy_seconds"] is not None and table["copy_seconds"] > 0
    code, text = est.cli("status")
    assert "est/actual" in text


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"spark": {"executor": 3}}, "executor"),
        ({"databricks": {"workers": 0}}, "workers"),
        ({"databricks": {"price_per_dbu": -1}}, "price_per_dbu"),
    ],
)
def test_a_wrong_estimates_key_is_a_config_error(tmp_path: Path, section: dict, key: str) -> None:  # type: ignore[type-arg]
    est = make(tmp_path, section)
    code, text = est.cli("plan")
    assert code == 2 and key in text and "Traceback" not in text
    assert not (tmp_path / "state.db").exists()
