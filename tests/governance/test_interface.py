"""The governance interface: adapter selection from the configuration, and the ``none`` adapter."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from icebridge.config import load_config
from icebridge.context import AppContext
from icebridge.errors import ConfigError, GovernanceError, exit_code, http_status
from icebridge.governance import GovernanceStep, adapter_name_for, governance_for
from icebridge.governance.none import NoGovernance
from icebridge.model import TableRef

SRC = TableRef("foreign", ("sales",), "orders")
DST = TableRef("managed", ("sales",), "orders")


def write_config(tmp_path: Path, **extra: object) -> Path:
    body: dict[str, object] = {
        "catalogs": {
            "foreign": {"type": "sql", "uri": f"sqlite:///{tmp_path / 'f.db'}", "warehouse": f"file://{tmp_path}/f"},
            "managed": {"type": "sql", "uri": f"sqlite:///{tmp_path / 'm.db'}", "warehouse": f"file://{tmp_path}/m"},
        },
        "mappings": [{"source": "foreign.sales.*", "target": "managed.sales"}],
    }
    body.update(extra)
    path = tmp_path / "icebridge.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_open_catalogs_get_the_none_adapter_by_default(tmp_path: Path) -> None:
    app = AppContext(load_config(write_config(tmp_path)))
    adapter = governance_for(app, SRC, DST)
    assert adapter.name == "none" and isinstance(adapter, NoGovernance)


def test_the_none_adapter_changes_nothing_and_says_so() -> None:
    adapter = NoGovernance()
    freeze = adapter.freeze(SRC)
    assert (freeze.adapter, freeze.action, freeze.before, freeze.after) == ("none", "freeze", {}, {})
    assert "'foreign' is an open catalog" in freeze.message
    swap = adapter.swap(SRC, DST)
    assert swap.action == "swap" and swap.before == {} and swap.after == {}
    assert swap.message == "no grants to swap: 'foreign' and 'managed' are open catalogs"
    assert adapter.swap(SRC, TableRef("foreign", ("new",), "orders")).message == (
        "no grants to swap: 'foreign' is an open catalog"
    )
    assert adapter.unfreeze(SRC, freeze).action == "unfreeze"
    unswap = adapter.unswap(SRC, DST, swap)
    assert unswap.action == "unswap" and "changed no grant" in unswap.message


def test_the_none_adapter_describes_each_step_as_the_step_says_it() -> None:
    adapter = NoGovernance()
    assert adapter.describe("freeze", SRC, DST) == adapter.freeze(SRC).message
    assert adapter.describe("swap", SRC, DST) == "no grants to swap: 'foreign' and 'managed' are open catalogs"
    assert adapter.describe("unswap", SRC, DST) == adapter.unswap(SRC, DST, adapter.swap(SRC, DST)).message
    assert adapter.describe("unfreeze", SRC, DST) == adapter.unfreeze(SRC, adapter.freeze(SRC)).message


def test_a_step_survives_its_json_record() -> None:
    step = GovernanceStep("unity", "swap", {"grants": [{"principal": "a", "privileges": ["SELECT"]}]}, {}, "1 grant")
    record = json.loads(json.dumps(dataclasses.asdict(step)))
    assert GovernanceStep.from_dict(record) == step
    with pytest.raises(GovernanceError, match="malformed"):
        GovernanceStep.from_dict({"action": "swap"})


def test_a_rule_and_a_catalog_choose_the_adapter(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path,
            governance={"catalogs": {"managed": "none"}},
            mappings=[{"source": "foreign.sales.*", "target": "managed.sales", "governance": "none"}],
        )
    )
    assert adapter_name_for(config, SRC, DST) == "none"
    assert config.governance.catalogs == {"managed": "none"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"governance": {"catalogs": {"foreign": "ranger"}}}, "governance.catalogs: unknown governance adapter"),
        ({"governance": {"catalogs": {"nowhere": "none"}}}, "governance.catalogs.nowhere: unknown catalog"),
        ({"governance": {"adapter": "none"}}, "governance.adapter: unknown key"),
        (
            {"mappings": [{"source": "foreign.sales.*", "target": "managed.sales", "governance": "acl"}]},
            "mappings[0].governance: unknown governance adapter 'acl'",
        ),
        ({"audit": {"table": True}}, "audit.table: unknown key; allowed keys here: iceberg_table"),
    ],
)
def test_a_wrong_governance_or_audit_setting_names_the_key(tmp_path: Path, extra: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, **extra))
    assert expected in str(info.value)


def test_governance_errors_are_terminal_conflicts() -> None:
    error = GovernanceError("masks could not be re-applied")
    assert not error.transient
    assert (exit_code(error), http_status(error)) == (1, 409)


def test_the_none_adapter_says_when_a_catalog_is_unity_catalog(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    body = yaml.safe_load(path.read_text())
    body["catalogs"]["managed"] = {
        "type": "rest",
        "uri": "https://adb-1.azuredatabricks.net/api/2.1/unity-catalog/iceberg-rest",
        "warehouse": "main",
    }
    path.write_text(yaml.safe_dump(body))
    adapter = governance_for(AppContext(load_config(path)), SRC, DST)
    message = adapter.swap(SRC, DST).message
    assert "governance is 'none'" in message and "'managed' is a Unity Catalog endpoint" in message
    assert "governance.catalogs.managed: unity" in message
