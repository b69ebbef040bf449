"""The engine registry: each engine declares its strategies and hooks; a new engine is its module plus one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from icebridge.config import load_config
from icebridge.context import AppContext
from icebridge.engines import (
    ENGINES,
    EngineEntry,
    engine_class,
    engine_for,
    strategy_names,
    strategy_spec,
)
from icebridge.engines.faulty import FaultyEngine, FaultySettings
from icebridge.errors import ConfigError, PlanError, TerminalError
from icebridge.model import Finding, PlanItem, Severity, Strategy, TableFacts, TableRef
from icebridge.phases import plan as plan_phase
from icebridge.phases import preflight as preflight_phase


def write_config(tmp_path: Path, **extra: Any) -> Path:
    config: dict[str, Any] = {
        "state": f"sqlite:///{tmp_path}/state.db",
        "catalogs": {
            "foreign": {"type": "sql", "uri": f"sqlite:///{tmp_path}/f.db", "warehouse": f"file://{tmp_path}/fw"},
            "managed": {"type": "sql", "uri": f"sqlite:///{tmp_path}/m.db", "warehouse": f"file://{tmp_path}/mw"},
        },
        "mappings": extra.pop("mappings", [{"source": "foreign.*.*", "target": "managed.{namespace}"}]),
        **extra,
    }
    path = tmp_path / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def facts(table: str = "foreign.shop.orders", **changes: Any) -> TableFacts:
    values: dict[str, Any] = {
        "table": table,
        "format_version": 2,
        "location": "file:///lake/orders",
        "metadata_location": "file:///lake/orders/metadata/v1.metadata.json",
        "table_uuid": "0d7c6b6e-0000-4000-8000-000000000000",
        "current_schema_id": 0,
        "default_spec_id": 0,
        "default_sort_order_id": 0,
        "schema_count": 1,
        "spec_count": 1,
        "snapshot_count": 1,
        "current_snapshot_id": 1,
        "data_files": 3,
        "delete_files": 0,
        "position_delete_files": 0,
        "equality_delete_files": 0,
        "data_bytes": 3000,
        "delete_bytes": 0,
        "records": 30,
        "file_formats": ("PARQUET",),
        "partition_fields": (),
    }
    values.update(changes)
    return TableFacts(**values)


# ------------------------------------------------------------------------------------------ registry


def test_every_engine_declares_what_its_registry_line_says() -> None:
    for name, entry in ENGINES.items():
        cls = engine_class(name)
        assert cls.name == name
        assert cls.strategies == frozenset(entry.strategies), name
        for spec in cls.specs:  # an engine declares a strategy only where it is the first to list it
            assert spec.engine == name and engine_for(spec.name) == name
    for strategy in strategy_names():
        spec = strategy_spec(strategy)
        assert spec.name == strategy and spec.engine == engine_for(strategy)
    assert {s: strategy_spec(s).byte_copy for s in strategy_names()} == {
        "databricks": False,
        "file-copy": True,
        "register": True,
        "rewrite": False,
        "spark-sql": False,
    }
    assert strategy_spec("databricks").remote_markers and not strategy_spec("rewrite").remote_markers
    assert strategy_spec(Strategy.FILE_COPY).validation_levels == (1, 2, 3)
    with pytest.raises(TerminalError, match="unknown strategy 'teleport'; known: databricks, file-copy"):
        strategy_spec("teleport")


def test_the_faulty_engine_carries_the_local_strategies_when_the_run_asks_for_it() -> None:
    assert engine_for("file-copy") == "local" and engine_for("rewrite", preferred="faulty") == "faulty"
    assert engine_for("spark-sql", preferred="faulty") == "spark"  # it does not carry that one
    assert engine_for("file-copy", preferred="spark") == "spark"  # the executors copy the files there


def test_names_are_known_without_importing_any_engine() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        from icebridge.engines import engine_names, strategy_names
        loaded = sorted(m for m in sys.modules if m.startswith("icebridge.engines.") or m.startswith("pyspark"))
        print(json.dumps([engine_names(), strategy_names(), loaded]))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    engines, strategies, loaded = json.loads(out.stdout)
    assert engines == ["databricks", "faulty", "local", "register", "spark"]
    assert strategies == ["databricks", "file-copy", "register", "rewrite", "spark-sql"]
    assert loaded == []


TELEPORT = """
from __future__ import annotations

from icebridge.engines import BaseEngine, CopyResult, StrategySpec
from icebridge.model import Finding, Severity


class TeleportEngine(BaseEngine):
    name = "teleport"
    specs = (StrategySpec("teleport", "teleport", byte_copy=True, validation_levels=(1, 2, 3)),)
    strategies = frozenset({"teleport"})
    copied: list[str] = []

    def __init__(self, config):
        self.config = config

    def choose_strategy(self, facts):
        return "teleport", f"teleport: {facts.records} rows beamed over"

    def strategy_findings(self, table, facts, strategy):
        if facts.delete_files:
            return [Finding(table, Severity.BLOCKER, "teleport-deletes", "deletes do not teleport", "compact first")]
        return []

    def preflight(self, items, catalogs):
        return [Finding(str(i.source), Severity.INFO, "teleport-ready", "the pads are warm") for i in items]

    def copy(self, job):
        self.copied.append(job.task)
        return CopyResult(batches_total=1, batches_skipped=0, commits=())
"""


def test_a_new_engine_is_its_module_and_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "teleport_engine.py").write_text(TELEPORT)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ENGINES, "teleport", EngineEntry("teleport_engine", "TeleportEngine", None, ("teleport",)))

    # the configuration knows the strategy; the spec is the module's
    config = load_config(
        write_config(
            tmp_path,
            mappings=[
                {"source": "foreign.shop.beamed", "target": "managed.shop", "strategy": "teleport"},
                {"source": "foreign.*.*", "target": "managed.{namespace}"},
            ],
        )
    )
    assert strategy_spec("teleport").byte_copy and engine_for("teleport") == "teleport"
    ctx = AppContext(config)

    # the planner asks the engine: forced by a rule, or chosen by it for the run
    beamed, orders, deleted = facts("foreign.shop.beamed"), facts(), facts("foreign.shop.deleted", delete_files=2)
    by_rule = {str(i.source): i for i in plan_phase.build(ctx, [beamed, orders], check_destinations=False)}
    assert by_rule["foreign.shop.beamed"].strategy == "teleport"
    assert by_rule["foreign.shop.orders"].strategy == "file-copy"
    run = {
        str(i.source): i for i in plan_phase.build(ctx, [orders, deleted], check_destinations=False, engine="teleport")
    }
    assert run["foreign.shop.orders"].reason == "teleport: 30 rows beamed over; --engine teleport for this run"
    assert [f.code for f in run["foreign.shop.deleted"].findings] == ["teleport-deletes"]
    assert run["foreign.shop.deleted"].blocked

    # pre-flight runs the engine's own checks for the tables it carries
    item = run["foreign.shop.orders"]
    findings = preflight_phase.engine_preflight(ctx, "teleport", [item])
    assert findings == [Finding("foreign.shop.orders", Severity.INFO, "teleport-ready", "the pads are warm")]


# ------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        (
            {"mappings": [{"source": "foreign.*.*", "target": "managed.x", "strategy": "teleport"}]},
            "mappings[0].strategy",
            "unknown strategy 'teleport'; known strategies: databricks, file-copy, register, rewrite, spark-sql",
        ),
        ({"engines": {"teleport": {}}}, "engines.teleport", "unknown engine; known engines: databricks, faulty, local"),
        ({"engines": {"faulty": {"crash_after": 2}}}, "engines.faulty.crash_after", "unknown key; allowed keys here"),
        (
            {"engines": {"faulty": {"transient_commit_probability": 2}}},
            "engines.faulty.transient_commit_probability",
            "less than or equal to 1",
        ),
        ({"engines": {"faulty": {"strategy": "teleport"}}}, "engines.faulty.strategy", "'auto', 'file-copy' or"),
        ({"engines": {"local": {"threads": 4}}}, "engines.local", "this engine takes no settings (found threads)"),
        (
            {"mappings": [{"source": "foreign.*.*", "target": "managed.x", "strategy": "databricks"}]},
            "engines.databricks.cluster",
            "required key is missing",
        ),
    ],
)
def test_engine_and_strategy_mistakes_name_the_key_and_the_known_names(
    tmp_path: Path, extra: dict[str, Any], key: str, message: str
) -> None:
    path = write_config(tmp_path, **extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}: {key}: " in str(caught.value)
    assert message in str(caught.value)


def test_engine_option_names_a_registered_engine(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, engines={"faulty": {"seed": 3}}))
    plan_phase.check_engine(config, "faulty")
    plan_phase.check_engine(config, None)
    with pytest.raises(PlanError, match=r"--engine 'teleport': unknown engine; choose one of databricks, faulty"):
        plan_phase.check_engine(config, "teleport")
    with pytest.raises(ConfigError, match=r"engines\.databricks\.cluster: required key is missing"):
        plan_phase.check_engine(config, "databricks")  # the engine chosen for the run must accept its settings


# ------------------------------------------------------------------------------------- faulty engine


def test_faults_repeat_with_the_seed_and_apply_only_to_the_chosen_tables(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    events: list[tuple[str, str, dict[str, Any]]] = []

    class Job:
        task = "foreign.shop.orders"

        @staticmethod
        def on_event(kind: str, message: str, data: dict[str, Any]) -> None:
            events.append((kind, message, data))

    def decisions(seed: int) -> list[str | None]:
        settings = FaultySettings(transient_commit_probability=0.3, terminal_commit_probability=0.2, seed=seed)
        engine = FaultyEngine(config, settings)
        return [engine.commit_fault(Job(), str(batch)) for batch in range(12) for _attempt in range(3)]  # type: ignore[arg-type]

    first = decisions(7)
    assert first == decisions(7), "the same seed injects the same faults"
    assert first != decisions(8)
    assert {"terminal-commit", "transient-commit", None} <= set(first)
    assert sum(kind == "fault" for kind, _m, _d in events) == 3 * sum(d is not None for d in first)

    limited = FaultyEngine(config, FaultySettings(transient_commit_probability=1.0, fault_limit=2))
    assert [limited.commit_fault(Job(), "0") for _ in range(4)] == ["transient-commit", "transient-commit", None, None]

    chosen = FaultyEngine(config, FaultySettings(tables=["foreign.shop.*", "other.x.y"]))
    assert chosen.applies("foreign.shop.orders") and not chosen.applies("foreign.hr.people")


def test_the_faulty_engine_plans_like_the_local_one_or_as_told(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    plain, orc = facts(), facts("foreign.shop.orc", file_formats=("ORC",))
    auto = FaultyEngine(config)
    assert auto.choose_strategy(plain)[0] == "file-copy" and auto.choose_strategy(orc)[0] == "rewrite"
    told = FaultyEngine(config, FaultySettings(strategy="file-copy"))
    strategy, reason = told.choose_strategy(orc)
    assert (strategy, reason) == ("file-copy", "file-copy: engines.faulty.strategy (with the faulty engine's faults)")
    [blocker] = told.strategy_findings("foreign.shop.orc", orc, strategy)
    assert blocker.code == "file-copy-unsupported"  # what file-copy cannot carry, it cannot carry here either


def test_an_engine_that_cannot_run_here_blocks_its_tables_with_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import icebridge.engines.spark as spark

    monkeypatch.setattr(spark, "pyspark_installed", lambda: False)
    ctx = AppContext(load_config(write_config(tmp_path)))
    [item] = plan_phase.build(ctx, [facts()], check_destinations=False, engine="spark")
    assert item.strategy == "spark-sql" and item.blocked
    [finding] = [f for f in item.findings if f.severity is Severity.BLOCKER]
    assert finding.code == "strategy-unavailable" and "pip install 'icebridge[spark]'" in finding.message


def test_preflight_groups_tables_by_the_engine_that_carries_them(tmp_path: Path) -> None:
    ctx = AppContext(load_config(write_config(tmp_path)))
    item = PlanItem(TableRef.parse("foreign.shop.orders"), TableRef.parse("managed.shop.orders"), "file-copy", "")
    assert preflight_phase.engine_preflight(ctx, "local", [item]) == []  # the warehouse takes a probe object
    assert list((tmp_path / "mw").iterdir()) == [], "the probe object was removed"
