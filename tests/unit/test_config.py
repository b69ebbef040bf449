"""The configuration file: every mistake names the file and the key, and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from icebridge.config import load_config
from icebridge.errors import ConfigError
from icebridge.model import Strategy, TableRef

GOOD = """
state: sqlite:///{tmp}/state.db
catalogs:
  foreign:
    type: sql
    uri: sqlite:///{tmp}/f.db
    warehouse: file://{tmp}/fw
  managed:
    type: sql
    uri: sqlite:///{tmp}/m.db
    password: ${{ICEBRIDGE_TEST_SECRET}}
mappings:
  - source: foreign.sales.tmp_*
    target: managed.scratch
    rename: "legacy_{{table}}"
    strategy: rewrite
  - source: foreign.sales.*
    target: managed.sales
  - source: foreign.*.*
    target: managed.{{namespace}}
migrate:
  concurrency: 3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "icebridge.yaml"
    path.write_text(text.format(tmp=tmp_path))
    return path


def test_good_config_resolves_env_and_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEBRIDGE_TEST_SECRET", "hunter2")
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.catalogs["managed"]["password"] == "hunter2"
    assert cfg.redacted_catalogs()["managed"]["password"] == "***"
    assert cfg.migrate.concurrency == 3
    tmp = TableRef("foreign", ("sales",), "tmp_orders")
    rule = cfg.rule_for(tmp)
    assert rule is not None and rule.strategy == Strategy.REWRITE
    assert str(rule.destination(tmp)) == "managed.scratch.legacy_tmp_orders"
    orders = TableRef("foreign", ("sales",), "orders")
    assert str(cfg.rule_for(orders).destination(orders)) == "managed.sales.orders"  # type: ignore[union-attr]
    other = TableRef("foreign", ("hr", "eu"), "people")
    assert str(cfg.rule_for(other).destination(other)) == "managed.hr.eu.people"  # type: ignore[union-attr]
    assert cfg.rule_for(TableRef("managed", ("x",), "y")) is None


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ICEBRIDGE_TEST_SECRET", "x")
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("ICEBRIDGE_CONFIG", str(path))
    assert load_config(None).path == path


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda t: t.replace("  concurrency: 3", "  concurency: 3"), "migrate.concurency: unknown key"),
        (lambda t: t.replace("catalogs:", "catalogz:"), "catalogz: unknown key"),
        (
            lambda t: t.replace("target: managed.sales\n", "target: warehouse.sales\n"),
            "mappings[1].target: unknown catalog 'warehouse'",
        ),
        (lambda t: t.replace("source: foreign.sales.*", "source: foreign.sales.[abc"), "mappings[1].source"),
        (lambda t: t.replace("source: foreign.sales.*", "source: sales"), "mappings[1].source"),
        (lambda t: t.replace("target: managed.sales\n", "target: managed.s*\n"), "cannot be a glob"),
        (lambda t: t.replace("strategy: rewrite", "strategy: teleport"), "mappings[0].strategy"),
        (
            lambda t: t.replace("${{ICEBRIDGE_TEST_SECRET}}", "${{ICEBRIDGE_NOT_SET_ANYWHERE}}"),
            "catalogs.managed.password: environment variable ICEBRIDGE_NOT_SET_ANYWHERE is not set",
        ),
        (lambda t: t.replace("state: sqlite:///", "state: /"), "state:"),
        (lambda t: t + "\n  - : [", "not valid YAML"),
        (lambda t: t + "  validate_threads: 0\n", "migrate.validate_threads"),
    ],
)
def test_mistakes_name_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutation, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ICEBRIDGE_TEST_SECRET", "x")
    path = write(tmp_path, mutation(GOOD))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found.*icebridge demo"):
        load_config(tmp_path / "nope.yaml")


def test_validation_threads_share_the_cores_among_tables_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ICEBRIDGE_TEST_SECRET", "x")
    settings = load_config(write(tmp_path, GOOD)).migrate  # concurrency 3
    assert settings.validate_threads is None
    assert settings.validation_threads(cores=16) == 5
    assert settings.validation_threads(cores=2) == 1
    pinned = load_config(write(tmp_path, GOOD + "  validate_threads: 12\n")).migrate
    assert pinned.validation_threads(cores=2) == 12
