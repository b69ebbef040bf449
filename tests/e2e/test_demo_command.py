"""The README's first command: the demo builds an estate, migrates, validates and cuts over every table."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from icebridge.cli import app
from icebridge.demo import catalog_properties
from tests.integration import estate


def test_demo_end_to_end_then_rollback(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(root), "--scale", "0.001"])
    assert result.exit_code == 0, result.output
    assert "7 of 7 tables migrated, validated and cut over" in result.output

    config = root / "icebridge.yaml"
    status = CliRunner().invoke(app, ["status", "-c", str(config), "--json"])
    tables = json.loads(status.output)["tables"]
    assert len(tables) == 7
    assert {t["phase"] for t in tables} == {"cut-over"} and {t["status"] for t in tables} == {"succeeded"}
    assert {t["strategy"] for t in tables} == {"file-copy", "rewrite"}

    props = catalog_properties(root)
    foreign = estate.open_catalog("foreign", props["foreign"])
    assert [foreign.list_tables(ns) for ns in foreign.list_namespaces()] == [[] for _ in foreign.list_namespaces()]

    rollback = CliRunner().invoke(app, ["rollback", "-c", str(config), "--json"])
    assert rollback.exit_code == 0, rollback.output
    identifiers = [ident for ns in foreign.list_namespaces() for ident in foreign.list_tables(ns)]
    rows_by_source = {t["source"]: t["rows"] for t in tables}
    assert sorted("foreign." + ".".join(i) for i in identifiers) == sorted(rows_by_source)
    for ident in identifiers:  # readable again from the recorded metadata, with the rows that were copied
        assert foreign.load_table(ident).scan().to_arrow().num_rows == rows_by_source["foreign." + ".".join(ident)]
