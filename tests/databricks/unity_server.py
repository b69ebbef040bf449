"""Unity Catalog's grants and table endpoints on the local contract server, for the ``unity`` governance adapter.

``UnityContractServer`` extends the contract server of ``conftest.py`` with what the adapter calls:

- ``GET /api/2.1/unity-catalog/permissions/table/{name}`` (paged with ``max_results``/``page_token``) and
  ``PATCH`` of the same path, whose body is checked field by field and each change parsed with the SDK's
  own ``PermissionsChange.from_dict`` and compared with its ``as_dict`` (an unknown privilege, a field the
  SDK does not send, a change naming no principal or changing nothing is a shape violation);
- ``GET /api/2.1/unity-catalog/tables/{name}`` with the table's columns, column masks and row filter,
  every answer built from the SDK's ``TableInfo`` so it has the real shape;
- the effective permissions of a table (its own grants plus the inherited ones a test scripts);
- ``ALTER TABLE ... ALTER COLUMN ... SET MASK`` and ``ALTER TABLE ... SET ROW FILTER`` through the
  statement endpoint, applied to the table the statement names.

These are contract tests, not live tests: they prove the requests have the shapes the SDK and the
documented API use, and that the adapter reads the answers right; no workspace is involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from .conftest import STATEMENT_FIELDS, ContractServer, ShapeError, _check_fields, parse_identifiers

UPDATE_FIELDS = {"changes", "omit_permissions_in_response"}
CHANGE_FIELDS = {"principal", "add", "remove"}
GET_QUERY = {"max_results", "page_token", "principal"}


class UnityContractServer(ContractServer):
    """The contract server plus Unity Catalog grants, table infos with masks and filters, and PATCH."""

    def __init__(self) -> None:
        super().__init__()
        self.direct: dict[str, dict[str, set[str]]] = {}  # table -> principal -> privileges on the table itself
        self.infos: dict[str, dict[str, Any]] = {}  # table -> columns, masks, row filter
        self.page_size = 0  # >0: answer grants in pages of this many principals
        self.refuse_mask = False  # a SET MASK statement fails (the warehouse refuses it)
        self.drop_grants_on: set[str] = set()  # tables whose PATCH is acknowledged but not applied

    # -- scripting ----------------------------------------------------------------------------------

    def table_grant(self, table: str, principal: str, *privileges: str) -> None:
        self.direct.setdefault(table, {}).setdefault(principal, set()).update(privileges)

    def add_table(self, table: str, columns: list[str], masks: dict[str, tuple[str, list[str]]] | None = None,
                  row_filter: tuple[str, list[str]] | None = None) -> None:  # fmt: skip
        self.tables.setdefault(table, {})
        self.infos[table] = {"columns": columns, "masks": dict(masks or {}), "row_filter": row_filter}

    def grants_of(self, table: str) -> dict[str, list[str]]:
        return {p: sorted(v) for p, v in self.direct.get(table, {}).items() if v}

    def patches(self, table: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.calls("PATCH", f"/api/2.1/unity-catalog/permissions/table/{table}")]

    # -- HTTP ----------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()

        class Handler(base):  # type: ignore[valid-type, misc]
            def do_PATCH(self) -> None:
                self._serve("PATCH")

        return Handler

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        perm = re.fullmatch(r"/api/2\.1/unity-catalog/permissions/(?P<kind>[a-z_]+)/(?P<name>[^/]+)", path)
        table = re.fullmatch(r"/api/2\.1/unity-catalog/tables/(?P<name>[^/]+)", path)
        effective = re.fullmatch(r"/api/2\.1/unity-catalog/effective-permissions/table/(?P<name>[^/]+)", path)
        statement = path == "/api/2.0/sql/statements" and isinstance(body, dict)
        if not (perm or table or effective or statement):
            return super().dispatch(method, path, query, body, headers)
        auth = super().dispatch("GET", "/api/2.0/preview/scim/v2/Me", {}, None, headers)  # the same auth checks
        if auth[0] != 200:
            return auth
        for i, (prefix, status) in enumerate(self.fail_next):  # scripted failures, answered once each
            if path.startswith(prefix):
                del self.fail_next[i]
                return status, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": f"simulated {status}"}
        if perm:
            if perm["kind"] != "table":
                raise ShapeError(f"permissions: the adapter only changes tables, got securable type {perm['kind']!r}")
            if method == "GET":
                return self._get_permissions(query, perm["name"])
            if method == "PATCH":
                return self._update_permissions(body, perm["name"])
            raise ShapeError(f"{path} takes GET or PATCH, not {method}")
        if table:
            if method != "GET":
                raise ShapeError(f"{path} takes GET, not {method}")
            return self._table_info(table["name"])
        if effective:
            return self._effective(effective["name"])
        return self._statement_with_policies(query, body)

    def _assignments(self, name: str) -> list[dict[str, Any]]:
        return [{"principal": p, "privileges": sorted(v)} for p, v in sorted(self.direct.get(name, {}).items()) if v]

    def _get_permissions(self, query: dict[str, str], name: str) -> tuple[int, Any]:
        from databricks.sdk.service.catalog import GetPermissionsResponse

        unknown = set(query) - GET_QUERY
        if unknown:
            raise ShapeError(f"permissions GET: unknown query parameter(s) {sorted(unknown)}")
        if "max_results" in query and not (int(query["max_results"]) == 0 or int(query["max_results"]) >= 150):
            raise ShapeError("permissions GET: max_results must be 0 or at least 150")
        if name not in self.tables:
            return 404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{name}' does not exist."}
        everything = self._assignments(name)
        if "principal" in query:
            everything = [a for a in everything if a["principal"] == query["principal"]]
        start = int(query.get("page_token") or 0)
        size = self.page_size or len(everything) or 1
        page: dict[str, Any] = {"privilege_assignments": everything[start : start + size]}
        if self.page_size and "max_results" not in query:
            raise ShapeError("permissions GET: a paged answer needs max_results in the request")
        if start + size < len(everything):
            page["next_page_token"] = str(start + size)
        return 200, GetPermissionsResponse.from_dict(page).as_dict()

    def _update_permissions(self, body: Any, name: str) -> tuple[int, Any]:
        from databricks.sdk.service.catalog import PermissionsChange, Privilege, UpdatePermissionsResponse

        _check_fields("permissions PATCH", body, UPDATE_FIELDS, {"changes"})
        if name not in self.tables:
            return 404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{name}' does not exist."}
        valid = {p.value for p in Privilege}
        parsed = []
        for raw in body["changes"]:
            _check_fields("permissions PATCH changes[]", raw, CHANGE_FIELDS, {"principal"})
            for key in ("add", "remove"):
                bad = [p for p in raw.get(key, []) if p not in valid]
                if bad:
                    raise ShapeError(f"permissions PATCH: unknown privilege(s) {bad} in {key}")
            change = PermissionsChange.from_dict(raw)
            if change.as_dict() != raw:
                raise ShapeError(f"permissions PATCH: {raw} is not what the SDK's PermissionsChange serialises")
            if not change.add and not change.remove:
                raise ShapeError(f"permissions PATCH: the change for {change.principal} adds and removes nothing")
            parsed.append(change)
        if name not in self.drop_grants_on:
            for change in parsed:
                held = self.direct.setdefault(name, {}).setdefault(str(change.principal), set())
                held.update(p.value for p in change.add or [])
                held.difference_update(p.value for p in change.remove or [])
        return 200, UpdatePermissionsResponse.from_dict({"privilege_assignments": self._assignments(name)}).as_dict()

    def _table_info(self, name: str) -> tuple[int, Any]:
        from databricks.sdk.service.catalog import TableInfo

        if name not in self.tables:
            return 404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{name}' does not exist."}
        cat, schema, table = name.split(".")
        info = self.infos.get(name, {"columns": ["id"], "masks": {}, "row_filter": None})
        columns = []
        for position, column in enumerate(info["columns"]):
            entry: dict[str, Any] = {"name": column, "position": position, "type_name": "LONG", "type_text": "bigint"}
            if column in info["masks"]:
                function, using = info["masks"][column]
                entry["mask"] = {"function_name": function, "using_column_names": using}
            columns.append(entry)
        out: dict[str, Any] = {
            "name": table,
            "catalog_name": cat,
            "schema_name": schema,
            "full_name": name,
            "table_type": "MANAGED",
            "data_source_format": "ICEBERG",
            "columns": columns,
        }
        if info["row_filter"]:
            function, inputs = info["row_filter"]
            out["row_filter"] = {"function_name": function, "input_column_names": inputs}
        return 200, TableInfo.from_dict(out).as_dict()

    def _effective(self, name: str) -> tuple[int, Any]:
        own = [
            {"principal": p, "privileges": [{"privilege": v} for v in sorted(privs)]}
            for p, privs in sorted(self.direct.get(name, {}).items())
            if privs
        ]
        return 200, {"privilege_assignments": own + self.effective.get(("table", name), [])}

    def _statement_with_policies(self, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        sql = str(body.get("statement", ""))
        mask = re.fullmatch(r"ALTER TABLE (.+) ALTER COLUMN `([^`]+)` SET MASK (\S+)(?: USING COLUMNS \((.*)\))?", sql)
        row_filter = re.fullmatch(r"ALTER TABLE (.+) SET ROW FILTER (\S+) ON \((.*)\)", sql)
        if not (mask or row_filter):
            return super()._statement(query, body)
        _check_fields("sql/statements", body, STATEMENT_FIELDS, {"statement", "warehouse_id"})
        match = mask or row_filter
        assert match is not None
        table = ".".join(parse_identifiers(match.group(1)))
        if table not in self.infos:
            return 200, {
                "statement_id": "st-2",
                "status": {"state": "FAILED", "error": {"message": f"no table {table}"}},
            }
        if mask:
            if self.refuse_mask:
                return 200, {
                    "statement_id": "st-2",
                    "status": {"state": "FAILED", "error": {"message": "[PERMISSION_DENIED] EXECUTE on the function"}},
                }
            using = parse_identifiers(mask.group(4).replace(", ", ".")) if mask.group(4) else []
            self.infos[table]["masks"][mask.group(2)] = (".".join(parse_identifiers(mask.group(3))), using)
        else:
            assert row_filter is not None
            columns = parse_identifiers(row_filter.group(3).replace(", ", "."))
            self.infos[table]["row_filter"] = (".".join(parse_identifiers(row_filter.group(2))), columns)
        return 200, {
            "statement_id": "st-2",
            "status": {"state": "SUCCEEDED"},
            "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 0, "columns": []}},
            "result": {"chunk_index": 0, "row_count": 0, "data_array": []},
        }


@pytest.fixture(name="unity_server")
def unity_server_fixture() -> Iterator[UnityContractServer]:
    """The Unity Catalog contract server; fails the test if any request had a shape the real API rejects."""
    server = UnityContractServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert server.violations == [], f"requests the real API would reject: {server.violations}"
