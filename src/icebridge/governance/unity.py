"""Unity Catalog: pre-flight checks for the ``databricks`` engine, and the grant swap for cut-over.

Pre-flight asks the workspace, as the principal IceBridge authenticates as:

- the metastore summary: is external data access enabled (IceBridge reads the managed destination
  back through Unity Catalog's Iceberg REST catalog to validate it)?
- effective privileges (``grants.get_effective``, inheritance included) of that principal and its
  groups: ``USE CATALOG`` / ``USE SCHEMA`` / ``SELECT`` on the source, ``USE CATALOG`` /
  ``USE SCHEMA`` / ``CREATE TABLE`` / ``EXTERNAL USE SCHEMA`` on the destination (and ``MODIFY`` on a
  destination that already exists);
- column masks and row filters on the source, through ``information_schema`` queries run by the
  Statement Execution API on the configured SQL warehouse (a masked or filtered source would be
  copied masked or filtered).

Every check returns findings; none raises. A check that cannot run is a finding saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.engines import databricks_sql as dsql
from icebridge.engines.databricks_client import Api, DatabricksSettings, load_settings, run_statement
from icebridge.errors import IceBridgeError, TerminalError
from icebridge.model import Finding, Severity

if TYPE_CHECKING:
    from icebridge.config import Config
    from icebridge.model import TableRef

ACCOUNT_USERS = "account users"
# Which privileges ALL PRIVILEGES implies; EXTERNAL USE SCHEMA is deliberately never implied.
_NOT_IN_ALL = {"EXTERNAL_USE_SCHEMA", "EXTERNAL_USE_LOCATION"}


# ---------------------------------------------------------------------------------------- pre-flight


def preflight(config: Config, source_ref: TableRef, destination_ref: TableRef) -> list[Finding]:
    """Unity Catalog findings for one table (blocker / warning / info, each with its fix); never raises."""
    try:
        settings = load_settings(config)
        api = Api(config, settings)
    except IceBridgeError as exc:
        return [
            Finding(
                str(source_ref),
                Severity.BLOCKER,
                "databricks-config",
                str(exc),
                "fix engines.databricks in the configuration file",
            )
        ]
    return check_table(api, settings, source_ref, destination_ref)


@dataclass
class _Checker:
    api: Api
    settings: DatabricksSettings
    table: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, code: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(self.table, severity, code, message, fix))

    def guard(self, what: str, fn: Callable[[], None]) -> bool:
        """Run one check; a failure to check is itself a finding (a blocker: nothing is known)."""
        try:
            fn()
            return True
        except IceBridgeError as exc:
            self.add(
                Severity.BLOCKER,
                "databricks-check-failed",
                f"could not check {what}: {self.api.redact(str(exc))}",
                "make the check possible (credentials, network, warehouse) and run preflight again",
            )
            return False


def check_table(
    api: Api, settings: DatabricksSettings, source_ref: TableRef, destination_ref: TableRef
) -> list[Finding]:
    """The checks of :func:`preflight` with an existing client (shared by the engine)."""
    c = _Checker(api, settings, str(source_ref))
    try:
        src = settings.uc_table(source_ref)
        dst = settings.uc_table(destination_ref)
    except TerminalError as exc:
        c.add(Severity.BLOCKER, "uc-three-levels", str(exc), "map the table to a one-level namespace")
        return c.findings
    problem = dst.creatable_problem()
    if problem:
        c.add(
            Severity.BLOCKER,
            "uc-invalid-name",
            f"Unity Catalog cannot create {dst.full_name}: {problem}",
            "give the destination a valid name with 'rename' in the mapping rule",
        )

    principals: set[str] = set()

    def identity() -> None:
        me = api.call("GET /api/2.0/preview/scim/v2/Me", lambda w: w.current_user.me())
        principals.update(p for p in (me.user_name, me.display_name, me.id) if p)
        principals.update(g.display for g in (me.groups or []) if g.display)
        principals.add(ACCOUNT_USERS)

    if not c.guard(f"who IceBridge is in the workspace at {api.host}", identity):
        return c.findings  # nothing else can be checked without reaching the workspace

    c.guard("the metastore's external data access", lambda: _check_external_access(c))
    required: list[tuple[str, str, str, str]] = [
        ("catalog", src.catalog, "USE_CATALOG", "source"),
        ("schema", f"{src.catalog}.{src.schema}", "USE_SCHEMA", "source"),
        ("table", src.full_name, "SELECT", "source"),
        ("catalog", dst.catalog, "USE_CATALOG", "destination"),
        ("schema", dst.schema_full_name, "USE_SCHEMA", "destination"),
        ("schema", dst.schema_full_name, "CREATE_TABLE", "destination"),
        ("schema", dst.schema_full_name, "EXTERNAL_USE_SCHEMA", "destination"),
    ]
    destination_exists: list[bool] = []
    c.guard(
        f"whether {dst.full_name} exists",
        lambda: destination_exists.append(
            bool(api.call("tables exists", lambda w: w.tables.exists(dst.full_name).table_exists))
        ),
    )
    if destination_exists and destination_exists[0]:
        required.append(("table", dst.full_name, "MODIFY", "destination"))
    for securable_type, full_name, privilege, side in required:
        check = functools.partial(_check_privilege, c, principals, securable_type, full_name, privilege, side)
        c.guard(f"{privilege.replace('_', ' ')} on {securable_type} {full_name}", check)
    if settings.warehouse_id:
        c.guard(f"column masks and row filters on {src.full_name}", lambda: _check_masks_and_filters(c, src))
    else:
        c.add(
            Severity.WARNING,
            "uc-masks-unchecked",
            f"column masks and row filters on {src.full_name} were not checked: no SQL warehouse is configured",
            "set engines.databricks.warehouse_id to a SQL warehouse IceBridge may use",
        )
    return c.findings


def _check_external_access(c: _Checker) -> None:
    summary = c.api.call("GET /api/2.1/unity-catalog/metastore_summary", lambda w: w.metastores.summary())
    if not summary.external_access_enabled:
        c.add(
            Severity.BLOCKER,
            "uc-external-access-disabled",
            f"external data access is disabled on metastore {summary.name or summary.metastore_id}; IceBridge "
            "cannot read the managed destination through the Iceberg REST catalog to validate it",
            "a metastore admin enables 'External data access' (Catalog > gear > Metastore > Details)",
        )


def _check_privilege(
    c: _Checker, principals: set[str], securable_type: str, full_name: str, privilege: str, side: str
) -> None:
    response = c.api.call(
        f"GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}",
        lambda w: w.grants.get_effective(securable_type, full_name),
    )
    held = privileges_of(principals, _assignments(response))
    if has_privilege(held, privilege):
        return
    keyword = privilege.replace("_", " ")
    who = sorted(p for p in principals if p != ACCOUNT_USERS)[:1]
    grantee = dsql.quote_identifier(who[0]) if who else "<principal>"
    target = ".".join(dsql.quote_identifier(p) for p in full_name.split("."))
    c.add(
        Severity.BLOCKER,
        f"uc-missing-{privilege.lower().replace('_', '-')}",
        f"the {side} needs {keyword} on {securable_type} {full_name} for {', '.join(sorted(principals))}; "
        "none of them holds it"
        + (" (ALL PRIVILEGES and ownership do not include it)" if privilege in _NOT_IN_ALL else ""),
        f"GRANT {keyword} ON {securable_type.upper()} {target} TO {grantee}",
    )


def _assignments(response: Any) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for assignment in response.privilege_assignments or []:
        names = [p.privilege.value for p in (assignment.privileges or []) if p.privilege is not None]
        out.append((assignment.principal or "", names))
    return out


def privileges_of(principals: Iterable[str], assignments: Iterable[tuple[str, list[str]]]) -> set[str]:
    """Every privilege held by any of ``principals`` (the user, its groups, account users)."""
    wanted = set(principals)
    held: set[str] = set()
    for principal, privileges in assignments:
        if principal in wanted:
            held.update(privileges)
    return held


def has_privilege(held: set[str], privilege: str) -> bool:
    """``privilege`` directly, or through ALL PRIVILEGES unless it is one ALL PRIVILEGES never conveys."""
    return privilege in held or ("ALL_PRIVILEGES" in held and privilege not in _NOT_IN_ALL)


def _check_masks_and_filters(c: _Checker, src: dsql.UcTable) -> None:
    where = "WHERE table_schema = :schema AND table_name = :table"
    params = {"schema": src.schema, "table": src.table}
    info = f"{dsql.quote_identifier(src.catalog)}.information_schema"
    masks = run_statement(c.api, c.settings, f"SELECT * FROM {info}.column_masks {where}", params)
    for row in masks:
        column = row.get("column_name") or "?"
        mask = ".".join(str(row[k]) for k in ("mask_catalog", "mask_schema", "mask_name") if row.get(k))
        c.add(
            Severity.BLOCKER,
            "uc-column-mask",
            f"column {column!r} of {src.full_name} has the mask {mask or '?'}; the copy would hold masked values",
            f"ALTER TABLE {src.sql} ALTER COLUMN {dsql.quote_identifier(str(column))} DROP MASK for the migration "
            "(or exempt the migration principal in the mask function), and re-apply it on the destination",
        )
    filters = run_statement(c.api, c.settings, f"SELECT * FROM {info}.row_filters {where}", params)
    for row in filters:
        name = ".".join(str(row[k]) for k in ("filter_catalog", "filter_schema", "filter_name") if row.get(k))
        c.add(
            Severity.BLOCKER,
            "uc-row-filter",
            f"{src.full_name} has the row filter {name or '?'}; the copy would hold only the rows it lets through",
            f"ALTER TABLE {src.sql} DROP ROW FILTER for the migration (or exempt the migration principal), "
            "and re-apply it on the destination",
        )


# ------------------------------------------------------------------------------------ grants swap


# Table privileges that can be granted with the same keyword on a managed Iceberg table.
TABLE_PRIVILEGES = ("SELECT", "MODIFY", "ALL PRIVILEGES", "APPLY TAG", "MANAGE", "BROWSE")


@dataclass(frozen=True)
class Grant:
    """One row of ``SHOW GRANTS``: who may do what, and on which object it was granted."""

    principal: str
    action: str
    object_type: str
    object_key: str


@dataclass(frozen=True)
class GrantSwap:
    """The statements that carry a source table's grants over to its destination at cut-over."""

    grant: tuple[str, ...]
    revoke: tuple[str, ...]
    rollback: tuple[str, ...]
    skipped: tuple[str, ...]


def parse_show_grants(rows: Iterable[dict[str, Any]]) -> list[Grant]:
    """``SHOW GRANTS`` rows (columns principal, actiontype, objecttype, objectkey; any case) as grants."""
    out: list[Grant] = []
    for row in rows:
        lowered = {str(k).lower().replace("_", ""): v for k, v in row.items()}
        principal, action = lowered.get("principal"), lowered.get("actiontype")
        if not principal or not action:
            raise TerminalError(f"SHOW GRANTS returned a row without principal/actionType: {row!r}")
        out.append(
            Grant(
                principal=str(principal),
                action=" ".join(str(action).upper().replace("_", " ").split()),
                object_type=str(lowered.get("objecttype") or "").upper(),
                object_key=str(lowered.get("objectkey") or ""),
            )
        )
    return out


def show_grants(api: Api, settings: DatabricksSettings, table: dsql.UcTable) -> list[Grant]:
    """The grants on ``table`` as ``SHOW GRANTS ON TABLE`` reports them (inherited ones included)."""
    return parse_show_grants(run_statement(api, settings, f"SHOW GRANTS ON TABLE {table.sql}"))


def swap_statements(grants: Iterable[Grant], source: dsql.UcTable, destination: dsql.UcTable) -> GrantSwap:
    """GRANT on the destination what was granted on the source table itself; REVOKE it on the source.

    Grants inherited from the catalog or schema are not repeated (they already reach the destination
    when it lives in the same schema, and would be wrong to copy otherwise); ownership becomes
    ``ALTER TABLE ... OWNER TO``. ``rollback`` undoes ``grant``.
    """
    grant: list[str] = []
    revoke: list[str] = []
    rollback: list[str] = []
    skipped: list[str] = []
    for g in grants:
        who = dsql.quote_identifier(g.principal)
        if g.object_type not in ("TABLE", ""):
            skipped.append(f"{g.action} for {g.principal}: inherited from {g.object_type.lower()} {g.object_key}")
            continue
        if g.action in ("OWN", "OWNER", "OWNERSHIP"):
            grant.append(f"ALTER TABLE {destination.sql} OWNER TO {who}")
            continue
        if g.action not in TABLE_PRIVILEGES:
            skipped.append(f"{g.action} for {g.principal}: not a privilege IceBridge carries over")
            continue
        grant.append(f"GRANT {g.action} ON TABLE {destination.sql} TO {who}")
        revoke.append(f"REVOKE {g.action} ON TABLE {source.sql} FROM {who}")
        rollback.append(f"REVOKE {g.action} ON TABLE {destination.sql} FROM {who}")
    return GrantSwap(tuple(grant), tuple(revoke), tuple(rollback), tuple(skipped))
