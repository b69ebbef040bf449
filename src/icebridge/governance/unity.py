"""Unity Catalog: pre-flight checks for the ``databricks`` engine, and the ``unity`` governance adapter.

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

The ``unity`` governance adapter (:class:`UnityGovernance`) works through the SDK's grants API on
securable type ``table`` (``w.grants.get`` / ``w.grants.update``, every page read):

- ``freeze`` revokes MODIFY and ALL PRIVILEGES granted on the source table (an ALL PRIVILEGES holder
  keeps SELECT) and reads the grants back; writers that hold MODIFY through the schema or catalog are
  named (effective permissions), since only the quiet period stops them;
- ``swap`` reads the source's column masks and row filter (``w.tables.get``) and re-applies them on the
  destination through the SQL warehouse, reading them back, *before any grant* — or raises a
  ``GovernanceError`` and grants nothing; then grants on the destination what the source had (what
  freeze revoked included), revokes it on the source and reads both back;
- ``unswap`` and ``unfreeze`` undo those from their recorded steps and read back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.engines import databricks_sql as dsql
from icebridge.engines.databricks_client import Api, DatabricksSettings, load_settings, run_statement
from icebridge.errors import GovernanceError, IceBridgeError, TerminalError
from icebridge.governance import GovernanceStep, last_step, record
from icebridge.model import Finding, Severity

if TYPE_CHECKING:
    from icebridge.config import Config
    from icebridge.context import AppContext
    from icebridge.governance import Action
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


# ------------------------------------------------------------------------- the governance adapter

# Table privileges the swap carries from source to destination (the grants API's names).
CARRIED = ("SELECT", "MODIFY", "ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "BROWSE", "READ_METADATA")
WRITES = ("MODIFY", "ALL_PRIVILEGES")  # what freeze revokes: ALL PRIVILEGES conveys MODIFY
TABLE = "table"  # the securable type of the grants API's paths

Grants = dict[str, list[str]]  # principal -> privileges granted on the table itself, sorted


def _as_list(grants: Grants) -> list[dict[str, Any]]:
    return [{"principal": p, "privileges": list(v)} for p, v in sorted(grants.items()) if v]


def _from_list(items: Any) -> Grants:
    out: Grants = {}
    for item in items or []:
        out[str(item["principal"])] = sorted(str(p) for p in item.get("privileges") or [])
    return out


def _count(grants: Grants) -> int:
    return sum(len(v) for v in grants.values())


class UnityGovernance:
    """Unity Catalog through the Databricks SDK's grants API: freeze by revoking write privileges, swap by
    granting on the destination what the source had (column masks and row filters first), revoking on the
    source and reading both back. Every step records the grants it read before and read back after."""

    name = "unity"

    def __init__(self, app: AppContext | None = None, *, config: Config | None = None, api: Api | None = None) -> None:
        cfg = config if config is not None else (app.config if app is not None else None)
        if cfg is None:
            raise TypeError("UnityGovernance needs the application context or a configuration")
        self.app = app
        self.settings = load_settings(cfg)
        self.api = api if api is not None else Api(cfg, self.settings)

    def _done(self, source: TableRef, step: GovernanceStep) -> GovernanceStep:
        """Keep the step in the event log: the audit shows its grants, and a later swap finds a freeze there."""
        if self.app is not None:
            record(self.app, source, step)
        return step

    def _frozen(self, source: TableRef) -> GovernanceStep | None:
        """The table's newest recorded freeze that no unfreeze followed."""
        if self.app is None:
            return None
        return last_step(self.app, source, "freeze", undone_by="unfreeze")

    def _run(self, action: str, source: TableRef, fn: Callable[[], GovernanceStep]) -> GovernanceStep:
        """One step: kept in the event log once done; a refusal of the workspace is a ``GovernanceError``
        (a transient failure stays transient, so the step is retried)."""
        try:
            step = fn()
        except GovernanceError:
            raise
        except IceBridgeError as exc:
            if exc.transient:
                raise
            raise GovernanceError(f"{source}: the unity {action} could not be done: {exc}") from exc
        return self._done(source, step)

    # the four steps
    def freeze(self, source: TableRef) -> GovernanceStep:
        return self._run("freeze", source, lambda: self._freeze(source))

    def unfreeze(self, source: TableRef, done: GovernanceStep) -> GovernanceStep:
        return self._run("unfreeze", source, lambda: self._unfreeze(source, done))

    def swap(self, source: TableRef, destination: TableRef, frozen: GovernanceStep | None = None) -> GovernanceStep:
        """Masks and row filter first, then grants on the destination, then revokes on the source; read back.

        The privileges freeze revoked are carried too: from ``frozen`` (the freeze step's record), else from
        the table's newest recorded freeze that no unfreeze followed (the event log keeps every step).
        """
        return self._run("swap", source, lambda: self._swap(source, destination, frozen or self._frozen(source)))

    def unswap(self, source: TableRef, destination: TableRef, done: GovernanceStep) -> GovernanceStep:
        return self._run("unswap", source, lambda: self._unswap(source, destination, done))

    # ------------------------------------------------------------------------------ reading

    def _table(self, ref: TableRef) -> dsql.UcTable:
        try:
            return self.settings.uc_table(ref)
        except TerminalError as exc:
            raise GovernanceError(str(exc)) from exc

    def grants(self, table: dsql.UcTable) -> Grants:
        """The privileges granted on ``table`` itself (not inherited), per principal, every page read."""
        out: Grants = {}
        token: str | None = None
        while True:
            page = self.api.call(
                f"GET /api/2.1/unity-catalog/permissions/{TABLE}/{table.full_name}",
                lambda w, t=token: w.grants.get(TABLE, table.full_name, max_results=0, page_token=t),  # type: ignore[misc]
            )
            for assignment in page.privilege_assignments or []:
                held = {p.value for p in (assignment.privileges or [])}
                principal = str(assignment.principal or "")
                out[principal] = sorted(set(out.get(principal, [])) | held)
            token = page.next_page_token
            if not token:
                return {p: v for p, v in out.items() if v}

    def _inherited_writers(self, table: dsql.UcTable) -> list[str]:
        """Principals that may write ``table`` through a grant on its schema or catalog (freeze cannot revoke)."""
        response = self.api.call(
            f"GET /api/2.1/unity-catalog/effective-permissions/{TABLE}/{table.full_name}",
            lambda w: w.grants.get_effective(TABLE, table.full_name),
        )
        out = []
        for assignment in response.privilege_assignments or []:
            for p in assignment.privileges or []:
                if p.privilege is not None and p.privilege.value in WRITES and p.inherited_from_name:
                    out.append(f"{assignment.principal} ({p.privilege.value} on {p.inherited_from_name})")
        return sorted(set(out))

    def policies(self, table: dsql.UcTable) -> dict[str, Any]:
        """The column masks and the row filter of ``table``, as its table info states them."""
        info = self.api.call(
            f"GET /api/2.1/unity-catalog/tables/{table.full_name}", lambda w: w.tables.get(table.full_name)
        )
        masks = [
            {
                "column": column.name,
                "function": column.mask.function_name,
                "using": list(column.mask.using_column_names or []),
            }
            for column in info.columns or []
            if column.mask is not None and column.mask.function_name
        ]
        row_filter = None
        if info.row_filter is not None and info.row_filter.function_name:
            row_filter = {
                "function": info.row_filter.function_name,
                "columns": list(info.row_filter.input_column_names or []),
            }
        return {"masks": masks, "row_filter": row_filter}

    # ------------------------------------------------------------------------------ writing

    def _update(self, table: dsql.UcTable, add: Grants, remove: Grants) -> None:
        from databricks.sdk.service.catalog import PermissionsChange, Privilege

        changes = [
            PermissionsChange(
                principal=principal,
                add=[Privilege(p) for p in add.get(principal, [])] or None,
                remove=[Privilege(p) for p in remove.get(principal, [])] or None,
            )
            for principal in sorted(set(add) | set(remove))
            if add.get(principal) or remove.get(principal)
        ]
        if changes:
            self.api.call(
                f"PATCH /api/2.1/unity-catalog/permissions/{TABLE}/{table.full_name}",
                lambda w: w.grants.update(TABLE, table.full_name, changes=changes),
            )

    def _apply_policies(self, destination: dsql.UcTable, wanted: dict[str, Any]) -> list[str]:
        """Re-apply masks and the row filter on ``destination`` and read them back; the statements run."""
        statements = policy_statements(destination, wanted)
        if not statements:
            return []
        if not self.settings.warehouse_id:
            raise GovernanceError(
                f"{destination.full_name}: the source has column masks or a row filter that must be re-applied on "
                "the destination before any grant, and no SQL warehouse is configured to run "
                f"{'; '.join(statements)} — set engines.databricks.warehouse_id, or run them yourself first"
            )
        for statement in statements:
            try:
                run_statement(self.api, self.settings, statement)
            except IceBridgeError as exc:
                raise GovernanceError(
                    f"{destination.full_name}: re-applying {statement!r} failed, so no grant was made: {exc}"
                ) from exc
        found = self.policies(destination)
        if _policy_key(found) != _policy_key(wanted):
            raise GovernanceError(
                f"{destination.full_name}: after re-applying the source's masks and row filter the destination reads "
                f"back {found}, not {wanted}; no grant was made — fix them on the destination and run cut-over again"
            )
        return statements

    # ------------------------------------------------------------------------------ pre-flight

    def preflight(self, source: TableRef, destination: TableRef) -> list[Finding]:
        """Whether the swap will be possible: the source's grants readable, a warehouse for its masks."""
        table = str(source)
        try:
            src = self._table(source)
            self.grants(src)
            policies = self.policies(src)
        except IceBridgeError as exc:
            return [
                Finding(
                    table,
                    Severity.BLOCKER,
                    "uc-grants-unreadable",
                    f"cut-over could not swap the grants of {source}: {self.api.redact(str(exc))}",
                    "give the migrating principal MANAGE on the source and destination tables (or make it their "
                    "owner), or set 'governance: none' for the table",
                )
            ]
        if (policies["masks"] or policies["row_filter"]) and not self.settings.warehouse_id:
            return [
                Finding(
                    table,
                    Severity.BLOCKER,
                    "uc-policies-need-warehouse",
                    f"{src.full_name} has column masks or a row filter, which cut-over re-applies on the destination "
                    "before any grant through a SQL warehouse; none is configured",
                    "set engines.databricks.warehouse_id to a SQL warehouse IceBridge may use",
                )
            ]
        return []

    # ------------------------------------------------------------------------------ the steps

    def _freeze(self, source: TableRef) -> GovernanceStep:
        src = self._table(source)
        before = self.grants(src)
        remove, add = _freeze_changes(before)
        self._update(src, add, remove)
        after = self.grants(src)
        still = sorted(p for p, v in after.items() if set(v) & set(WRITES))
        if still:
            raise GovernanceError(
                f"{src.full_name}: {', '.join(still)} still hold write privileges after freezing it; "
                "revoke them (they may be re-granted by an automation) and run cut-over again"
            )
        inherited = self._inherited_writers(src)
        if remove:
            message = f"revoked {_count(remove)} write privilege(s) of {len(remove)} principal(s) on {src.full_name}"
        else:
            message = f"no principal holds MODIFY on {src.full_name} itself: nothing revoked"
        if inherited:
            message += (
                f"; {', '.join(inherited)} may still write through an inherited grant (the quiet period covers them)"
            )
        step = GovernanceStep(
            self.name,
            "freeze",
            {"grants": _as_list(before)},
            {
                "grants": _as_list(after),
                "revoked": _as_list(remove),
                "added": _as_list(add),
                "inherited_writers": inherited,
            },
            message,
        )
        return step

    def _unfreeze(self, source: TableRef, done: GovernanceStep) -> GovernanceStep:
        src = self._table(source)
        revoked, added = _from_list(done.after.get("revoked")), _from_list(done.after.get("added"))
        now = self.grants(src)
        self._update(src, revoked, {p: [v for v in privs if v in now.get(p, [])] for p, privs in added.items()})
        after = self.grants(src)
        missing = _lacking(revoked, after)
        if missing:
            raise GovernanceError(f"{src.full_name}: write privileges could not be restored: {_as_list(missing)}")
        return GovernanceStep(
            self.name,
            "unfreeze",
            {"grants": _as_list(now)},
            {"grants": _as_list(after), "restored": _as_list(revoked)},
            f"restored {_count(revoked)} write privilege(s) of {len(revoked)} principal(s) on {src.full_name}",
        )

    def _swap(self, source: TableRef, destination: TableRef, frozen: GovernanceStep | None) -> GovernanceStep:
        src, dst = self._table(source), self._table(destination)
        policies = self.policies(src)
        statements = self._apply_policies(dst, policies)  # before any grant, or a GovernanceError
        source_before, destination_before = self.grants(src), self.grants(dst)
        carried, grant, revoke, skipped = _swap_changes(source_before, destination_before, frozen)
        self._update(dst, grant, {})
        self._update(src, {}, revoke)
        source_after, destination_after = self.grants(src), self.grants(dst)
        absent, left = _lacking(carried, destination_after), _within(revoke, source_after)
        if absent or left:
            raise GovernanceError(
                f"the grant swap from {src.full_name} to {dst.full_name} did not read back as made: "
                f"missing on the destination {_as_list(absent)}, still on the source {_as_list(left)}"
            )
        parts = [
            f"{_count(carried)} privilege(s) of {len(carried)} principal(s) granted on {dst.full_name}"
            if carried
            else f"no grant on {src.full_name} itself to carry to {dst.full_name}",
            f"{_count(revoke)} revoked on {src.full_name}" if revoke else "",
            f"{len(statements)} mask/row-filter statement(s) run first" if statements else "",
            f"not carried: {', '.join(skipped)}" if skipped else "",
        ]
        return GovernanceStep(
            self.name,
            "swap",
            {"source_grants": _as_list(source_before), "destination_grants": _as_list(destination_before), **policies},
            {
                "source_grants": _as_list(source_after),
                "destination_grants": _as_list(destination_after),
                "granted": _as_list(grant),
                "revoked": _as_list(revoke),
                "policy_statements": statements,
            },
            "; ".join(p for p in parts if p),
        )

    # ------------------------------------------------------------------------------ describing

    def describe(self, action: Action, source: TableRef, destination: TableRef) -> str:
        """What ``action`` would do now, from the grants and policies read (nothing is changed); the undoing
        actions from the table's recorded steps."""
        try:
            return self._describe(action, source, destination)
        except GovernanceError:
            raise
        except IceBridgeError as exc:
            if exc.transient:
                raise
            raise GovernanceError(f"{source}: what the unity {action} would do cannot be read: {exc}") from exc

    def _describe(self, action: Action, source: TableRef, destination: TableRef) -> str:
        src = self._table(source)
        if action == "freeze":
            remove, _ = _freeze_changes(self.grants(src))
            if not remove:
                return f"no principal holds MODIFY on {src.full_name} itself: nothing to revoke"
            return (
                f"revokes {_count(remove)} write privilege(s) of {len(remove)} principal(s) on {src.full_name}: "
                + ", ".join(f"{', '.join(v)} of {p}" for p, v in sorted(remove.items()))
            )
        if action == "unfreeze":
            frozen = self._frozen(source)
            revoked = _from_list(frozen.after.get("revoked") if frozen else None)
            if not revoked:
                return f"no recorded freeze of {src.full_name} revoked anything: nothing to restore"
            return f"restores {_count(revoked)} write privilege(s) of {len(revoked)} principal(s) on {src.full_name}"
        dst = self._table(destination)
        if action == "swap":
            policies = self.policies(src)
            carried, grant, revoke, skipped = _swap_changes(self.grants(src), self.grants(dst), self._frozen(source))
            masks = len(policies["masks"])
            shown = " and ".join(
                ([f"{masks} column mask(s)"] if masks else []) + (["a row filter"] if policies["row_filter"] else [])
            )
            parts = [
                f"grants {_count(grant)} privilege(s) of {len(grant)} principal(s) on {dst.full_name}"
                if grant
                else f"no grant on {src.full_name} itself to carry to {dst.full_name}",
                f"revokes {_count(revoke)} on {src.full_name}" if revoke else "",
                f"re-applies {shown} on {dst.full_name} first" if shown else "",
                f"not carried: {', '.join(skipped)}" if skipped else "",
            ]
            return "; ".join(p for p in parts if p)
        swapped = last_step(self.app, source, "swap", undone_by="unswap") if self.app is not None else None
        if swapped is None:
            return f"no recorded grant swap from {src.full_name}: nothing to undo"
        granted, revoked = _from_list(swapped.after.get("granted")), _from_list(swapped.after.get("revoked"))
        restored = f"restores {_count(revoked)} privilege(s) on {src.full_name}"
        return f"{restored}, revokes {_count(granted)} on {dst.full_name}"

    def _unswap(self, source: TableRef, destination: TableRef, done: GovernanceStep) -> GovernanceStep:
        src, dst = self._table(source), self._table(destination)
        granted, revoked = _from_list(done.after.get("granted")), _from_list(done.after.get("revoked"))
        source_before, destination_before = self.grants(src), self.grants(dst)
        self._update(src, revoked, {})
        self._update(dst, {}, granted)
        source_after, destination_after = self.grants(src), self.grants(dst)
        unrestored, kept = _lacking(revoked, source_after), _within(granted, destination_after)
        if unrestored or kept:
            raise GovernanceError(
                f"undoing the grant swap did not read back as made: not restored on {src.full_name} "
                f"{_as_list(unrestored)}, still on {dst.full_name} {_as_list(kept)}"
            )
        statements = done.after.get("policy_statements") or []
        return GovernanceStep(
            self.name,
            "unswap",
            {"source_grants": _as_list(source_before), "destination_grants": _as_list(destination_before)},
            {"source_grants": _as_list(source_after), "destination_grants": _as_list(destination_after)},
            f"{_count(revoked)} privilege(s) restored on {src.full_name}, {_count(granted)} revoked on {dst.full_name}"
            + ("; the masks and row filter re-applied on the destination stay" if statements else ""),
        )


def _within(wanted: Grants, held: Grants) -> Grants:
    """The privileges of ``wanted`` that ``held`` grants, per principal (principals left with none dropped)."""
    return {p: v for p, privs in wanted.items() if (v := [x for x in privs if x in held.get(p, [])])}


def _lacking(wanted: Grants, held: Grants) -> Grants:
    """The privileges of ``wanted`` that ``held`` does not grant, per principal (none: dropped)."""
    return {p: v for p, privs in wanted.items() if (v := [x for x in privs if x not in held.get(p, [])])}


def _only(grants: Grants, kinds: Iterable[str]) -> Grants:
    """The privileges of ``grants`` of these kinds, per principal (none: dropped)."""
    allowed = set(kinds)
    return {p: v for p, privs in grants.items() if (v := [x for x in privs if x in allowed])}


def _freeze_changes(before: Grants) -> tuple[Grants, Grants]:
    """What a freeze revokes (write privileges) and adds (SELECT where ALL PRIVILEGES was the only read)."""
    remove = _only(before, WRITES)
    add = {p: ["SELECT"] for p, v in remove.items() if "ALL_PRIVILEGES" in v and "SELECT" not in before[p]}
    return remove, add


def _swap_changes(
    source_before: Grants, destination_before: Grants, frozen: GovernanceStep | None
) -> tuple[Grants, Grants, Grants, list[str]]:
    """What a swap carries, grants on the destination, revokes on the source, and leaves out."""
    # what principals held before the freeze: now, less what freeze added, plus what it revoked
    added = _from_list(frozen.after.get("added") if frozen else None)
    held = {p: set(v) - set(added.get(p, [])) for p, v in source_before.items()}
    for p, privs in _from_list(frozen.after.get("revoked") if frozen else None).items():
        held.setdefault(p, set()).update(privs)
    carried = {p: sorted(v & set(CARRIED)) for p, v in held.items()}
    carried = {p: v for p, v in carried.items() if v}
    skipped = sorted(f"{v} for {p}" for p, privs in held.items() for v in privs if v not in CARRIED)
    grant = _lacking(carried, destination_before)
    # the source loses every table privilege it still grants (a SELECT freeze added included)
    revoke = _only(source_before, CARRIED)
    return carried, grant, revoke, skipped


def policy_statements(destination: dsql.UcTable, wanted: dict[str, Any]) -> list[str]:
    """The statements that put ``wanted``'s column masks and row filter on ``destination``."""
    q = dsql.quote_identifier
    out = []
    for mask in wanted.get("masks") or []:
        function = ".".join(q(part) for part in str(mask["function"]).split("."))
        using = f" USING COLUMNS ({', '.join(q(c) for c in mask['using'])})" if mask.get("using") else ""
        out.append(f"ALTER TABLE {destination.sql} ALTER COLUMN {q(mask['column'])} SET MASK {function}{using}")
    row_filter = wanted.get("row_filter")
    if row_filter:
        function = ".".join(q(part) for part in str(row_filter["function"]).split("."))
        columns = ", ".join(q(c) for c in row_filter["columns"])
        out.append(f"ALTER TABLE {destination.sql} SET ROW FILTER {function} ON ({columns})")
    return out


def _policy_key(policies: dict[str, Any]) -> tuple[Any, ...]:
    masks = sorted((m["column"], m["function"], tuple(m.get("using") or ())) for m in policies.get("masks") or [])
    row_filter = policies.get("row_filter")
    return (
        tuple(masks),
        (row_filter["function"], tuple(row_filter["columns"])) if row_filter else None,
    )
