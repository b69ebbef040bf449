"""The ``unity`` governance adapter against the local Unity Catalog contract server (contract tests, not live).

Freeze revokes write privileges on the source; swap re-applies the source's column masks and row
filter on the destination before any grant, grants there what the source had, revokes it on the
source and reads both back; unswap and unfreeze undo them from their records.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from icebridge.config import GovernanceSettings
from icebridge.context import AppContext
from icebridge.errors import GovernanceError
from icebridge.governance import GovernanceStep, governance_for
from icebridge.governance.unity import UnityGovernance
from icebridge.model import TableRef

from .conftest import TOKEN, make_config
from .unity_server import UnityContractServer, unity_server_fixture  # noqa: F401  (the fixture)

pytestmark = pytest.mark.databricks

SRC = TableRef("foreign", ("sales",), "orders")
DST = TableRef("managed", ("sales",), "orders")
UC_SRC, UC_DST = "uc_foreign.sales.orders", "main.sales.orders"
ORIGINAL = {
    "admins": ["ALL_PRIVILEGES"],
    "analysts": ["SELECT"],
    "auditors": ["READ_METADATA"],
    "etl@example.com": ["MODIFY", "SELECT"],
}


def scripted(server: UnityContractServer, masked: bool = True) -> None:
    masks = {"email": ("gov.masks.email", ["region"])} if masked else {}
    row_filter = ("gov.filters.by_region", ["region"]) if masked else None
    server.add_table(UC_SRC, ["id", "email", "region"], masks, row_filter)
    server.add_table(UC_DST, ["id", "email", "region"])
    for principal, privileges in ORIGINAL.items():
        server.table_grant(UC_SRC, principal, *privileges)
    server.effective[("table", UC_SRC)] = [
        {
            "principal": "loader",
            "privileges": [
                {"privilege": "MODIFY", "inherited_from_name": "uc_foreign.sales", "inherited_from_type": "SCHEMA"}
            ],
        }
    ]


def adapter(server: UnityContractServer, tmp_path: Path, **settings: Any) -> UnityGovernance:
    """The adapter as cut-over builds it: with the process's context, whose store has the table's task."""
    config = make_config(tmp_path, host=server.url, token=TOKEN, **settings)
    app = AppContext(dataclasses.replace(config, state_url=f"sqlite:///{tmp_path}/state.db"))
    if app.store.get_task(str(SRC)) is None:
        app.store.plan_task(str(SRC), str(DST), "databricks", "test")
    return UnityGovernance(app)


def roundtrip(step: GovernanceStep) -> GovernanceStep:
    return GovernanceStep.from_dict(json.loads(json.dumps(dataclasses.asdict(step))))


def test_freeze_swap_unswap_unfreeze(unity_server: UnityContractServer, tmp_path: Path) -> None:
    scripted(unity_server)
    unity = adapter(unity_server, tmp_path)

    freeze = unity.freeze(SRC)
    assert unity_server.grants_of(UC_SRC) == {
        "admins": ["SELECT"],
        "analysts": ["SELECT"],
        "auditors": ["READ_METADATA"],
        "etl@example.com": ["SELECT"],
    }
    assert freeze.before["grants"] == [{"principal": p, "privileges": v} for p, v in sorted(ORIGINAL.items())]
    assert "revoked 2 write privilege(s) of 2 principal(s)" in freeze.message
    assert "loader (MODIFY on uc_foreign.sales)" in freeze.message  # inherited: named, not revocable here

    patches_before_swap = len(unity_server.requests)
    swap = unity.swap(SRC, DST)
    after = unity_server.requests[patches_before_swap:]
    policy_calls = [i for i, r in enumerate(after) if r["path"] == "/api/2.0/sql/statements"]
    grant_calls = [i for i, r in enumerate(after) if r["method"] == "PATCH"]
    assert policy_calls and grant_calls and max(policy_calls) < min(grant_calls)  # masks before any grant
    assert [r["body"]["statement"] for r in after if r["path"] == "/api/2.0/sql/statements"] == [
        "ALTER TABLE `main`.`sales`.`orders` ALTER COLUMN `email` SET MASK `gov`.`masks`.`email` "
        "USING COLUMNS (`region`)",
        "ALTER TABLE `main`.`sales`.`orders` SET ROW FILTER `gov`.`filters`.`by_region` ON (`region`)",
    ]
    assert unity_server.infos[UC_DST]["masks"] == {"email": ("gov.masks.email", ["region"])}
    assert unity_server.infos[UC_DST]["row_filter"] == ("gov.filters.by_region", ["region"])
    # what the source had before the freeze reaches the destination, writers included
    assert unity_server.grants_of(UC_DST) == ORIGINAL
    assert unity_server.grants_of(UC_SRC) == {}
    assert swap.after["destination_grants"] == [
        {"principal": p, "privileges": v} for p, v in sorted(unity_server.grants_of(UC_DST).items())
    ]
    assert swap.before["masks"] == [{"column": "email", "function": "gov.masks.email", "using": ["region"]}]
    assert (
        "5 privilege(s) of 4 principal(s) granted on main.sales.orders; 4 revoked on uc_foreign.sales.orders"
        in swap.message
    )

    unswap = unity.unswap(SRC, DST, roundtrip(swap))
    assert unity_server.grants_of(UC_DST) == {}
    assert unity_server.grants_of(UC_SRC) == {
        "admins": ["SELECT"],
        "analysts": ["SELECT"],
        "auditors": ["READ_METADATA"],
        "etl@example.com": ["SELECT"],
    }
    assert unswap.action == "unswap" and "masks and row filter re-applied on the destination stay" in unswap.message

    unfreeze = unity.unfreeze(SRC, roundtrip(freeze))
    assert unity_server.grants_of(UC_SRC) == ORIGINAL
    assert unfreeze.after["grants"] == freeze.before["grants"]


def test_a_resumed_swap_carries_what_the_recorded_freeze_revoked(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    scripted(unity_server, masked=False)
    freeze = adapter(unity_server, tmp_path).freeze(SRC)
    # another process, after a crash: the freeze's record, passed or found in the event log, knows what it revoked
    adapter(unity_server, tmp_path).swap(SRC, DST, frozen=roundtrip(freeze))
    assert unity_server.grants_of(UC_DST)["etl@example.com"] == ["MODIFY", "SELECT"]
    assert not any(r["path"] == "/api/2.0/sql/statements" for r in unity_server.requests)  # nothing to re-apply


def test_the_freeze_is_found_in_the_event_log_and_every_step_is_audited(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    from icebridge.app.audit import AuditRequest, AuditService

    scripted(unity_server, masked=False)
    adapter(unity_server, tmp_path).freeze(SRC)
    fresh = adapter(unity_server, tmp_path)
    swap = fresh.swap(SRC, DST)  # no record passed: the log has the freeze
    assert unity_server.grants_of(UC_DST)["etl@example.com"] == ["MODIFY", "SELECT"]
    fresh.unswap(SRC, DST, swap)
    log = AuditService(fresh.app).entries(AuditRequest(table=str(SRC)))  # type: ignore[arg-type]
    steps = {e.kind: e for e in log.entries}
    assert set(steps) == {"governance-freeze", "governance-swap", "governance-unswap"}
    assert steps["governance-freeze"].before is not None
    assert steps["governance-freeze"].before["grants"] == [
        {"principal": p, "privileges": v} for p, v in sorted(ORIGINAL.items())
    ]
    assert steps["governance-swap"].after is not None
    assert {g["principal"] for g in steps["governance-swap"].after["destination_grants"]} == set(ORIGINAL)
    assert steps["governance-swap"].after["phase"] == "planned"  # the table's own state beside the grants


def test_an_undone_freeze_is_not_carried_again(unity_server: UnityContractServer, tmp_path: Path) -> None:
    scripted(unity_server, masked=False)
    unity = adapter(unity_server, tmp_path)
    unity.unfreeze(SRC, unity.freeze(SRC))
    assert unity_server.grants_of(UC_SRC)["etl@example.com"] == ["MODIFY", "SELECT"]
    unity_server.direct[UC_SRC]["etl@example.com"].discard("MODIFY")  # revoked by hand after the rollback
    unity.swap(SRC, DST)
    assert unity_server.grants_of(UC_DST)["etl@example.com"] == ["SELECT"]


def test_grants_are_read_page_by_page(unity_server: UnityContractServer, tmp_path: Path) -> None:
    scripted(unity_server, masked=False)
    unity_server.page_size = 1
    unity = adapter(unity_server, tmp_path)
    assert unity.grants(unity._table(SRC)) == ORIGINAL
    gets = unity_server.calls("GET", f"/api/2.1/unity-catalog/permissions/table/{UC_SRC}")
    assert [g["query"].get("page_token") for g in gets] == [None, "1", "2", "3"]


def test_masks_without_a_warehouse_are_a_blocker_and_nothing_is_granted(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    scripted(unity_server)
    with pytest.raises(GovernanceError, match="before any grant, and no SQL warehouse is configured") as info:
        adapter(unity_server, tmp_path, warehouse_id=None).swap(SRC, DST)
    assert "SET MASK `gov`.`masks`.`email`" in str(info.value)
    assert unity_server.calls("PATCH", f"/api/2.1/unity-catalog/permissions/table/{UC_DST}") == []
    assert unity_server.grants_of(UC_SRC) == ORIGINAL


def test_a_mask_the_warehouse_refuses_is_a_blocker_and_nothing_is_granted(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    scripted(unity_server)
    unity_server.refuse_mask = True
    with pytest.raises(GovernanceError, match="re-applying .*SET MASK.* failed, so no grant was made"):
        adapter(unity_server, tmp_path).swap(SRC, DST)
    assert unity_server.patches(UC_DST) == [] and unity_server.patches(UC_SRC) == []


def test_a_grant_that_does_not_read_back_fails_the_swap(unity_server: UnityContractServer, tmp_path: Path) -> None:
    scripted(unity_server, masked=False)
    unity_server.drop_grants_on.add(UC_DST)
    with pytest.raises(GovernanceError, match="did not read back as made: missing on the destination"):
        adapter(unity_server, tmp_path).swap(SRC, DST)


def test_every_grant_change_is_a_change_the_sdk_would_send(unity_server: UnityContractServer, tmp_path: Path) -> None:
    from databricks.sdk.service.catalog import PermissionsChange

    scripted(unity_server, masked=False)
    unity = adapter(unity_server, tmp_path)
    unity.swap(SRC, DST, frozen=unity.freeze(SRC))
    bodies = unity_server.patches(UC_SRC) + unity_server.patches(UC_DST)
    assert bodies
    for body in bodies:
        assert set(body) == {"changes"}
        for change in body["changes"]:
            assert PermissionsChange.from_dict(change).as_dict() == change


def test_the_configuration_chooses_the_unity_adapter(unity_server: UnityContractServer, tmp_path: Path) -> None:
    config = dataclasses.replace(
        make_config(tmp_path, host=unity_server.url, token=TOKEN),
        governance=GovernanceSettings(catalogs={"foreign": "unity"}),
    )
    adapter_ = governance_for(AppContext(config), SRC, DST)
    assert isinstance(adapter_, UnityGovernance) and adapter_.name == "unity"


def test_preflight_finds_what_would_stop_the_swap(unity_server: UnityContractServer, tmp_path: Path) -> None:
    from icebridge.model import Severity

    scripted(unity_server)
    assert adapter(unity_server, tmp_path).preflight(SRC, DST) == []
    [finding] = adapter(unity_server, tmp_path, warehouse_id=None).preflight(SRC, DST)
    assert (finding.severity, finding.code) == (Severity.BLOCKER, "uc-policies-need-warehouse")
    [missing] = adapter(unity_server, tmp_path).preflight(TableRef("foreign", ("sales",), "gone"), DST)
    assert (missing.severity, missing.code) == (Severity.BLOCKER, "uc-grants-unreadable")
    assert "uc_foreign.sales.gone" in missing.message and "MANAGE" in missing.fix


def test_an_adapter_that_cannot_be_built_is_a_preflight_blocker(tmp_path: Path) -> None:
    from icebridge.governance import preflight
    from icebridge.model import PlanItem, Severity

    config = dataclasses.replace(
        make_config(tmp_path), engines={}, governance=GovernanceSettings(catalogs={"foreign": "unity"})
    )
    [finding] = preflight(AppContext(config), [PlanItem(SRC, DST, "file-copy", "test")])
    assert (finding.severity, finding.code) == (Severity.BLOCKER, "governance-unavailable")
    assert "the unity governance adapter cannot run" in finding.message and "engines.databricks" in finding.message


def test_a_refusal_of_the_workspace_is_a_governance_error_and_throttling_stays_transient(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    from icebridge.errors import TransientError

    scripted(unity_server, masked=False)
    unity = adapter(unity_server, tmp_path)
    with pytest.raises(GovernanceError, match="the unity freeze could not be done: .*does not exist"):
        unity.freeze(TableRef("foreign", ("sales",), "gone"))
    unity_server.fail_next.extend([("/api/2.1/unity-catalog/permissions", 503)] * 20)
    with pytest.raises(TransientError):
        adapter(unity_server, tmp_path, retry_timeout_seconds=1).freeze(SRC)
    assert unity_server.grants_of(UC_SRC) == ORIGINAL  # nothing changed


def test_describe_says_what_each_step_would_do_and_changes_nothing(
    unity_server: UnityContractServer, tmp_path: Path
) -> None:
    scripted(unity_server)
    unity = adapter(unity_server, tmp_path)

    freeze = unity.describe("freeze", SRC, DST)
    swap = unity.describe("swap", SRC, DST)
    assert freeze == (
        "revokes 2 write privilege(s) of 2 principal(s) on uc_foreign.sales.orders: "
        "ALL_PRIVILEGES of admins, MODIFY of etl@example.com"
    )
    assert swap == (
        "grants 5 privilege(s) of 4 principal(s) on main.sales.orders; revokes 5 on uc_foreign.sales.orders; "
        "re-applies 1 column mask(s) and a row filter on main.sales.orders first"
    )
    assert not [r for r in unity_server.requests if r["method"] != "GET"]  # read, never written
    assert unity_server.grants_of(UC_SRC) == ORIGINAL and unity_server.grants_of(UC_DST) == {}
    assert unity.describe("unswap", SRC, DST) == "no recorded grant swap from uc_foreign.sales.orders: nothing to undo"

    unity.freeze(SRC)
    unity.swap(SRC, DST)
    assert unity.describe("unswap", SRC, DST) == (
        "restores 4 privilege(s) on uc_foreign.sales.orders, revokes 5 on main.sales.orders"
    )
    assert unity.describe("unfreeze", SRC, DST) == (
        "restores 2 write privilege(s) of 2 principal(s) on uc_foreign.sales.orders"
    )
