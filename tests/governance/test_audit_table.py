"""``audit.iceberg_table``: every table's steps appended to ``icebridge_audit.events`` in its destination catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from icebridge.app import audit
from tests.integration.test_behaviour import Estate, make_estate


@pytest.fixture
def exporting(tmp_path: Path) -> Estate:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    config = yaml.safe_load(est.config.read_text())
    config["audit"] = {"iceberg_table": True}
    est.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return est


def audit_rows(est: Estate) -> list[dict]:  # type: ignore[type-arg]
    table = est.managed().load_table(("icebridge_audit", "events"))
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"])


def test_each_run_appends_its_steps_once(exporting: Estate) -> None:
    assert exporting.cli("migrate", "--tables", "foreign.shop.regions")[0] == 0
    first = audit_rows(exporting)
    _, log = exporting.cli_json("audit", "--tables", "foreign.shop.regions")
    assert [r["id"] for r in first] == [e["id"] for e in log["entries"]]
    for row, entry in zip(first, log["entries"], strict=True):
        assert (row["table_name"], row["destination"]) == ("foreign.shop.regions", "managed.shop.regions")
        assert (row["kind"], row["message"], row["actor"]) == (entry["kind"], entry["message"], entry["actor"])
        assert json.loads(row["after"]) == entry["after"]
        assert (json.loads(row["before"]) if row["before"] else None) == entry["before"]
    assert json.loads(first[-1]["after"])["phase"] == "migrated"

    # the next run appends only its own steps; nothing is appended twice
    assert exporting.cli("validate", "--tables", "foreign.shop.regions")[0] == 0
    second = audit_rows(exporting)
    ids = [r["id"] for r in second]
    assert ids[: len(first)] == [r["id"] for r in first] and len(set(ids)) == len(ids) > len(first)
    _, log = exporting.cli_json("audit", "--tables", "foreign.shop.regions")
    assert ids == [e["id"] for e in log["entries"]]
    snapshot = exporting.managed().load_table(("icebridge_audit", "events")).current_snapshot()
    assert snapshot is not None
    assert int(snapshot.summary.additional_properties[audit.LAST_ID_KEY]) == ids[-1]  # type: ignore[union-attr]


def test_a_failed_append_leaves_the_run_as_it_was_and_the_next_run_catches_up(
    exporting: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: audit.AuditTableExporter, catalog_name: str) -> None:
        raise OSError("the destination storage is read-only")

    with monkeypatch.context() as patch:
        patch.setattr(audit.AuditTableExporter, "_table", refuse)
        code, out = exporting.cli("migrate", "--tables", "foreign.shop.regions")
    assert code == 0, out
    _, log = exporting.cli_json("audit")
    failed = [e for e in log["entries"] if e["kind"] == "audit-export-failed"]
    assert failed and "could not be appended to icebridge_audit.events" in failed[0]["message"]
    assert not exporting.managed().namespace_exists("icebridge_audit") or not audit_rows(exporting)
    assert exporting.cli("validate", "--tables", "foreign.shop.regions")[0] == 0
    _, log = exporting.cli_json("audit", "--tables", "foreign.shop.regions")
    assert [r["id"] for r in audit_rows(exporting)] == [e["id"] for e in log["entries"]]


def test_without_the_switch_no_audit_table_is_made(tmp_path: Path) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    assert est.cli("migrate", "--tables", "foreign.shop.regions")[0] == 0
    assert not est.managed().namespace_exists("icebridge_audit")
