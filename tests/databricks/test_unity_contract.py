"""Unity Catalog pre-flight and the grant swap, against the local contract server."""

from __future__ import annotations

from pathlib import Path

import pytest

from icebridge.governance.unity import preflight
from icebridge.model import Finding, Severity, TableRef

from .conftest import TOKEN, ContractServer, make_config

pytestmark = pytest.mark.databricks

SRC = TableRef("foreign", ("sales",), "orders")
DST = TableRef("managed", ("sales",), "orders")
UC_SRC, UC_DST = "uc_foreign.sales.orders", "main.sales.orders"


def run(server: ContractServer, tmp_path: Path, **settings: object) -> list[Finding]:
    return preflight(make_config(tmp_path, host=server.url, token=TOKEN, **settings), SRC, DST)


def codes(findings: list[Finding]) -> dict[str, Severity]:
    return {f.code: f.severity for f in findings}


def test_everything_in_place_gives_no_finding(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    assert run(contract_server, tmp_path) == []
    statements = [r["body"] for r in contract_server.calls("POST", "/api/2.0/sql/statements")]
    where = "WHERE table_schema = :schema AND table_name = :table"
    assert [s["statement"] for s in statements] == [
        f"SELECT * FROM `uc_foreign`.information_schema.column_masks {where}",
        f"SELECT * FROM `uc_foreign`.information_schema.row_filters {where}",
    ]
    assert statements[0]["parameters"] == [
        {"name": "schema", "value": "sales", "type": "STRING"},
        {"name": "table", "value": "orders", "type": "STRING"},
    ]
    assert statements[0]["warehouse_id"] == "wh-contract"


@pytest.mark.parametrize(
    ("securable", "name", "privilege", "code"),
    [
        ("catalog", "uc_foreign", "USE_CATALOG", "uc-missing-use-catalog"),
        ("schema", "uc_foreign.sales", "USE_SCHEMA", "uc-missing-use-schema"),
        ("table", UC_SRC, "SELECT", "uc-missing-select"),
        ("catalog", "main", "USE_CATALOG", "uc-missing-use-catalog"),
        ("schema", "main.sales", "USE_SCHEMA", "uc-missing-use-schema"),
        ("schema", "main.sales", "CREATE_TABLE", "uc-missing-create-table"),
        ("schema", "main.sales", "EXTERNAL_USE_SCHEMA", "uc-missing-external-use-schema"),
    ],
)
def test_each_missing_privilege_is_a_blocker_with_the_grant(
    contract_server: ContractServer, tmp_path: Path, securable: str, name: str, privilege: str, code: str
) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    for assignment in contract_server.effective[(securable, name)]:
        assignment["privileges"] = [p for p in assignment["privileges"] if p["privilege"] != privilege]
    [finding] = run(contract_server, tmp_path)
    assert finding.code == code and finding.severity is Severity.BLOCKER
    assert name in finding.message
    keyword = privilege.replace("_", " ")
    assert finding.fix.startswith(f"GRANT {keyword} ON {securable.upper()} ")


def test_all_privileges_never_conveys_external_use_schema(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.effective[("schema", "main.sales")] = [
        {"principal": "migrator@example.com", "privileges": [{"privilege": "ALL_PRIVILEGES"}]}
    ]
    findings = run(contract_server, tmp_path)
    assert codes(findings) == {"uc-missing-external-use-schema": Severity.BLOCKER}
    assert "ALL PRIVILEGES" in findings[0].message


def test_privileges_of_other_principals_do_not_count(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.effective[("table", UC_SRC)] = [
        {"principal": "someone-else", "privileges": [{"privilege": "SELECT"}]}
    ]
    assert codes(run(contract_server, tmp_path)) == {"uc-missing-select": Severity.BLOCKER}


def test_an_existing_destination_needs_modify(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.tables[UC_DST] = {}
    assert codes(run(contract_server, tmp_path)) == {"uc-missing-modify": Severity.BLOCKER}
    contract_server.grant("table", UC_DST, "account users", "MODIFY")
    assert run(contract_server, tmp_path) == []


def test_metastore_without_external_access_is_a_blocker(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.external_access_enabled = False
    [finding] = run(contract_server, tmp_path)
    assert finding.code == "uc-external-access-disabled" and finding.severity is Severity.BLOCKER
    assert "External data access" in finding.fix


def test_column_masks_and_row_filters_are_blockers(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.on_statement(
        lambda s: "column_masks" in s,
        ["table_catalog", "table_schema", "table_name", "column_name", "mask_catalog", "mask_schema", "mask_name"],
        [["uc_foreign", "sales", "orders", "card no", "gov", "masks", "last4"]],
    )
    contract_server.on_statement(
        lambda s: "row_filters" in s,
        ["table_catalog", "table_schema", "table_name", "filter_catalog", "filter_schema", "filter_name"],
        [["uc_foreign", "sales", "orders", "gov", "filters", "eu_only"]],
    )
    findings = {f.code: f for f in run(contract_server, tmp_path)}
    assert set(findings) == {"uc-column-mask", "uc-row-filter"}
    assert "'card no'" in findings["uc-column-mask"].message and "gov.masks.last4" in findings["uc-column-mask"].message
    assert "ALTER COLUMN `card no` DROP MASK" in findings["uc-column-mask"].fix
    assert "gov.filters.eu_only" in findings["uc-row-filter"].message
    assert all(f.severity is Severity.BLOCKER for f in findings.values())


def test_without_a_warehouse_masks_are_a_warning(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    assert codes(run(contract_server, tmp_path, warehouse_id=None)) == {"uc-masks-unchecked": Severity.WARNING}


def test_unreachable_workspace_is_a_finding_not_an_exception(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = make_config(
        tmp_path, host=f"http://127.0.0.1:{port}", token=TOKEN, retry_timeout_seconds=1, http_timeout_seconds=1
    )
    [finding] = preflight(config, SRC, DST)
    assert finding.severity is Severity.BLOCKER and finding.code == "databricks-check-failed"
    assert f"127.0.0.1:{port}" in finding.message and TOKEN not in finding.message


def test_bad_settings_are_a_finding(tmp_path: Path) -> None:
    [finding] = preflight(make_config(tmp_path, cluster={}), SRC, DST)
    assert finding.code == "databricks-config" and "engines.databricks.cluster" in finding.message


def test_invalid_destination_name_is_a_blocker(contract_server: ContractServer, tmp_path: Path) -> None:
    contract_server.grant_everything(UC_SRC, UC_DST)
    contract_server.grant_everything(UC_SRC, "main.sales.or ders")
    config = make_config(tmp_path, host=contract_server.url, token=TOKEN)
    findings = preflight(config, SRC, TableRef("managed", ("sales",), "or ders"))
    assert codes(findings) == {"uc-invalid-name": Severity.BLOCKER}


def test_preflight_asks_unity_catalog_through_the_databricks_engine(
    contract_server: ContractServer, tmp_path: Path
) -> None:
    from icebridge.context import AppContext
    from icebridge.model import PlanItem
    from icebridge.phases.preflight import engine_preflight

    contract_server.grant_everything(UC_SRC, UC_DST)
    for assignment in contract_server.effective[("table", UC_SRC)]:
        assignment["privileges"] = [p for p in assignment["privileges"] if p["privilege"] != "SELECT"]
    ctx = AppContext(make_config(tmp_path, host=contract_server.url, token=TOKEN))
    item = PlanItem(SRC, DST, "databricks", "forced by the mapping rule")
    [finding] = engine_preflight(ctx, "databricks", [item])
    assert (finding.table, finding.code, finding.severity) == (str(SRC), "uc-missing-select", Severity.BLOCKER)
    assert not contract_server.calls("POST", "/api/2.2/jobs/runs/submit")  # checked, nothing copied


def test_a_databricks_engine_that_cannot_be_built_is_a_preflight_blocker(tmp_path: Path) -> None:
    from icebridge.context import AppContext
    from icebridge.model import PlanItem
    from icebridge.phases.preflight import engine_preflight

    ctx = AppContext(make_config(tmp_path, cluster={}))
    [finding] = engine_preflight(ctx, "databricks", [PlanItem(SRC, DST, "databricks", "")])
    assert finding.code == "engine-unavailable" and finding.severity is Severity.BLOCKER
    assert "engines.databricks.cluster" in finding.message
