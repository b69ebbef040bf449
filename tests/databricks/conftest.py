"""A local stand-in for a Databricks workspace's REST API that checks request shapes.

It serves the endpoints the ``databricks`` engine and the Unity Catalog pre-flight call, with the
paths, methods and JSON field names of the real API (as the Databricks SDK sends them), and answers
400 to a request with an unknown field, a missing required field or a wrong method/path. Every such
rejection is also kept in ``violations`` and fails the test at teardown, so a shape error cannot
hide behind an error the engine handled. Job runs are simulated: each ``runs/get`` moves a run one
step (PENDING → RUNNING → TERMINATED) and the outcome of each submitted run is scripted by the test.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from icebridge.config import Config, MigrateSettings

TOKEN = "dapi-contract-0123456789-secret"
CLIENT_ID = "sp-application-id"
CLIENT_SECRET = "m2m-client-secret-value-42"
ACCESS_TOKEN = "oauth-access-token-from-contract-server"
RESULT_MARKER = "ICEBRIDGE-RESULT "

SUBMIT_FIELDS = {
    "access_control_list", "budget_policy_id", "email_notifications", "environments", "git_source", "health",
    "idempotency_token", "notification_settings", "queue", "run_as", "run_name", "tasks", "timeout_seconds",
    "webhook_notifications",
}  # fmt: skip
TASK_FIELDS = {
    "task_key", "new_cluster", "existing_cluster_id", "spark_python_task", "notebook_task", "sql_task",
    "timeout_seconds", "max_retries", "libraries", "depends_on", "description", "environment_key",
}  # fmt: skip
TASK_KINDS = {"spark_python_task", "notebook_task", "sql_task"}
CLUSTER_FIELDS = {
    "spark_version", "node_type_id", "instance_pool_id", "num_workers", "autoscale", "runtime_engine",
    "data_security_mode", "single_user_name", "policy_id", "spark_conf", "custom_tags", "spark_env_vars",
    "driver_node_type_id", "aws_attributes", "azure_attributes", "gcp_attributes",
}  # fmt: skip
STATEMENT_FIELDS = {
    "statement", "warehouse_id", "wait_timeout", "on_wait_timeout", "disposition", "format", "parameters",
    "catalog", "schema", "row_limit", "byte_limit",
}  # fmt: skip


class ShapeError(Exception):
    """The request does not have the shape the real API accepts."""


def _check_fields(what: str, body: Any, allowed: set[str], required: set[str]) -> None:
    if not isinstance(body, dict):
        raise ShapeError(f"{what}: expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ShapeError(f"{what}: unknown field(s) {unknown}")
    missing = sorted(required - set(body))
    if missing:
        raise ShapeError(f"{what}: missing required field(s) {missing}")


def parse_identifiers(text: str) -> list[str]:
    """The backtick-quoted identifiers of a dotted name at the start of ``text`` (doubled backticks undone)."""
    parts: list[str] = []
    i = 0
    while i < len(text) and text[i] == "`":
        j = i + 1
        buf = []
        while True:
            if text[j] == "`":
                if j + 1 < len(text) and text[j + 1] == "`":
                    buf.append("`")
                    j += 2
                    continue
                break
            buf.append(text[j])
            j += 1
        parts.append("".join(buf))
        i = j + 1
        if i < len(text) and text[i] == ".":
            i += 1
        else:
            break
    return parts


def parse_properties(sql: str) -> dict[str, str]:
    """The TBLPROPERTIES of a CREATE statement (string literals with backslash escapes)."""
    match = re.search(r"TBLPROPERTIES \((.*?)\)(?: AS |$)", sql, re.S)
    if not match:
        return {}
    literal = r"'((?:[^'\\]|\\.)*)'"
    pairs = re.findall(literal + r" = " + literal, match.group(1))
    unescape = lambda s: re.sub(r"\\(.)", r"\1", s)  # noqa: E731
    return {unescape(k): unescape(v) for k, v in pairs}


@dataclass
class SimRun:
    run_id: int
    task_run_id: int
    run_name: str
    statements: list[dict[str, str]]
    outcome: str
    polls: int = 0
    cancelled: bool = False
    state: dict[str, Any] = field(default_factory=lambda: {"life_cycle_state": "PENDING", "state_message": ""})
    logs: str = ""
    status: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED")


class ContractServer:
    """The workspace: records requests, serves canned answers, simulates runs; see the module docstring."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.runs: dict[int, SimRun] = {}
        self.tokens: dict[str, int] = {}
        self.outcomes: deque[str] = deque()
        self.running_polls = 2
        self.active = 0
        self.max_active = 0
        self.files: dict[str, bytes] = {}
        self.tables: dict[str, dict[str, str]] = {}
        self.external_access_enabled = True
        self.me: dict[str, Any] = {"id": "42", "userName": "migrator@example.com", "groups": [{"display": "data-eng"}]}
        self.effective: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.statement_results: list[tuple[Callable[[str], bool], list[str], list[list[str]]]] = []
        self.fail_next: deque[tuple[str, int]] = deque()  # (path prefix, HTTP status) answered once each
        self.unauthorized_message = ""
        self._next_id = 1000
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- scripting helpers for tests ------------------------------------------------------------

    def grant(self, securable_type: str, full_name: str, principal: str, *privileges: str) -> None:
        self.effective.setdefault((securable_type, full_name), []).append(
            {"principal": principal, "privileges": [{"privilege": p} for p in privileges]}
        )

    def grant_everything(self, src: str, dst: str, principal: str = "data-eng") -> None:
        s_cat, s_schema, _ = src.split(".")
        d_cat, d_schema, _ = dst.split(".")
        self.grant("catalog", s_cat, principal, "USE_CATALOG")
        self.grant("schema", f"{s_cat}.{s_schema}", principal, "USE_SCHEMA")
        self.grant("table", src, principal, "SELECT")
        self.grant("catalog", d_cat, principal, "USE_CATALOG")
        self.grant("schema", f"{d_cat}.{d_schema}", principal, "USE_SCHEMA", "CREATE_TABLE", "EXTERNAL_USE_SCHEMA")

    def on_statement(self, match: Callable[[str], bool], columns: list[str], rows: list[list[str]]) -> None:
        self.statement_results.append((match, columns, rows))

    def submitted(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/api/2.2/jobs/runs/submit"]

    def submitted_sql(self) -> list[list[str]]:
        out = []
        for body in self.submitted():
            param = body["tasks"][0]["spark_python_task"]["parameters"][0]
            out.append([s["sql"] for s in json.loads(param)["statements"]])
        return out

    def calls(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == path]

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                body: Any = None
                if raw and "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                elif raw:
                    body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                record = {"method": method, "path": unquote(parts.path), "query": query, "body": body}
                record["headers"] = dict(self.headers.items())
                with server.lock:
                    server.requests.append(record)
                try:
                    status, payload = server.dispatch(method, record["path"], query, body, self.headers)
                except ShapeError as exc:
                    with server.lock:
                        server.violations.append(f"{method} {record['path']}: {exc}")
                    status, payload = 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> tuple[int, Any]:
        if path == "/.well-known/databricks-config":
            return 200, {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": "1234567890"}
        if path == "/oidc/.well-known/oauth-authorization-server":
            return 200, {
                "authorization_endpoint": f"{self.url}/oidc/v1/authorize",
                "token_endpoint": f"{self.url}/oidc/v1/token",
            }
        if path == "/oidc/v1/token":
            return self._token(method, body, headers)
        auth = headers.get("Authorization") or ""
        if auth not in (f"Bearer {TOKEN}", f"Bearer {ACCESS_TOKEN}"):
            message = self.unauthorized_message or "Invalid access token."
            return 401, {"error_code": "UNAUTHENTICATED", "message": message}
        if headers.get("X-Databricks-Workspace-Id") not in (None, "1234567890"):
            raise ShapeError("X-Databricks-Workspace-Id does not name this workspace")
        for i, (prefix, status) in enumerate(self.fail_next):
            if path.startswith(prefix):
                del self.fail_next[i]
                code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}.get(status, "INTERNAL_ERROR")
                return status, {"error_code": code, "message": f"simulated {status}"}
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/api/2\.0/preview/scim/v2/Me", self._me),
            ("POST", r"/api/2\.0/workspace/mkdirs", self._mkdirs),
            ("POST", r"/api/2\.0/workspace/import", self._import),
            ("POST", r"/api/2\.2/jobs/runs/submit", self._submit),
            ("GET", r"/api/2\.2/jobs/runs/get", self._get_run),
            ("GET", r"/api/2\.2/jobs/runs/get-output", self._get_output),
            ("POST", r"/api/2\.2/jobs/runs/cancel", self._cancel),
            ("GET", r"/api/2\.2/jobs/runs/list", self._list_runs),
            ("GET", r"/api/2\.1/unity-catalog/metastore_summary", self._metastore),
            ("GET", r"/api/2\.1/unity-catalog/tables/(?P<name>[^/]+)/exists", self._table_exists),
            ("GET", r"/api/2\.1/unity-catalog/tables/(?P<name>[^/]+)", self._table),
            ("GET", r"/api/2\.1/unity-catalog/effective-permissions/(?P<kind>[a-z_]+)/(?P<name>[^/]+)", self._eff),
            ("POST", r"/api/2\.0/sql/statements", self._statement),
        ]
        for route_method, pattern, fn in routes:
            match = re.fullmatch(pattern, path)
            if match:
                if method != route_method:
                    raise ShapeError(f"{path} takes {route_method}, not {method}")
                return fn(query=query, body=body, **match.groupdict())
        raise ShapeError(f"no such endpoint: {method} {path}")

    def _token(self, method: str, body: Any, headers: Any) -> tuple[int, Any]:
        if method != "POST":
            raise ShapeError("the token endpoint takes POST")
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            raise ShapeError(f"token request must be grant_type=client_credentials, got {body!r}")
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form_ok = body.get("client_id") == CLIENT_ID and body.get("client_secret") == CLIENT_SECRET
        if headers.get("Authorization") != f"Basic {basic}" and not form_ok:
            return 401, {"error": "invalid_client", "error_description": "bad client credentials"}
        return 200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}

    def _me(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, self.me

    def _mkdirs(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        _check_fields("workspace/mkdirs", body, {"path"}, {"path"})
        return 200, {}

    def _import(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        _check_fields("workspace/import", body, {"path", "content", "format", "language", "overwrite"}, {"path"})
        if body.get("format") not in (None, "AUTO", "SOURCE", "RAW", "JUPYTER", "HTML", "DBC", "R_MARKDOWN"):
            raise ShapeError(f"workspace/import: unknown format {body.get('format')!r}")
        if not str(body["path"]).startswith("/"):
            raise ShapeError("workspace/import: path must be absolute")
        self.files[body["path"]] = base64.b64decode(body.get("content") or "")
        return 200, {}

    def _check_submit(self, body: Any) -> None:
        _check_fields("runs/submit", body, SUBMIT_FIELDS, {"tasks"})
        token = body.get("idempotency_token")
        if token is not None and (not isinstance(token, str) or len(token) > 64):
            raise ShapeError("runs/submit: idempotency_token must be a string of at most 64 characters")
        if not isinstance(body["tasks"], list) or not body["tasks"]:
            raise ShapeError("runs/submit: tasks must be a non-empty list")
        for task in body["tasks"]:
            _check_fields("runs/submit tasks[]", task, TASK_FIELDS, {"task_key"})
            kinds = TASK_KINDS & set(task)
            if len(kinds) != 1:
                raise ShapeError(f"runs/submit tasks[]: exactly one task type is required, got {sorted(kinds)}")
            if "new_cluster" not in task and "existing_cluster_id" not in task and "sql_task" not in kinds:
                raise ShapeError("runs/submit tasks[]: a cluster (new_cluster/existing_cluster_id) is required")
            cluster = task.get("new_cluster")
            if cluster is not None:
                _check_fields("new_cluster", cluster, CLUSTER_FIELDS, {"spark_version"})
                if "node_type_id" not in cluster and "instance_pool_id" not in cluster:
                    raise ShapeError("new_cluster: node_type_id or instance_pool_id is required")
                if cluster.get("runtime_engine", "STANDARD") not in ("PHOTON", "STANDARD"):
                    raise ShapeError(f"new_cluster: bad runtime_engine {cluster.get('runtime_engine')!r}")
            python = task.get("spark_python_task")
            if python is not None:
                _check_fields("spark_python_task", python, {"python_file", "parameters", "source"}, {"python_file"})
                if python.get("source", "WORKSPACE") == "WORKSPACE" and python["python_file"] not in self.files:
                    raise ShapeError(f"spark_python_task: {python['python_file']} does not exist in the workspace")
                if not all(isinstance(p, str) for p in python.get("parameters", [])):
                    raise ShapeError("spark_python_task: parameters must be strings")

    def _submit(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self._check_submit(body)
        with self.lock:
            token = body.get("idempotency_token")
            if token and token in self.tokens:
                return 200, {"run_id": self.tokens[token]}
            self._next_id += 2
            run_id = self._next_id
            param = body["tasks"][0]["spark_python_task"]["parameters"][0]
            run = SimRun(
                run_id=run_id,
                task_run_id=run_id + 1,
                run_name=body.get("run_name", ""),
                statements=json.loads(param)["statements"],
                outcome=self.outcomes.popleft() if self.outcomes else "success",
            )
            self.runs[run_id] = run
            if token:
                self.tokens[token] = run_id
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        return 200, {"run_id": run_id}

    def _advance(self, run: SimRun) -> None:
        if run.terminal:
            return
        run.polls += 1
        if run.cancelled:
            self._finish(run, "TERMINATED", "CANCELED", "Run cancelled.")
        elif run.polls <= 1:
            run.state = {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}
        elif run.outcome == "never" or run.polls <= 1 + self.running_polls:
            run.state = {"life_cycle_state": "RUNNING", "state_message": ""}
        else:
            self._finish_outcome(run)

    def _finish(self, run: SimRun, life: str, result: str | None, message: str) -> None:
        run.state = {"life_cycle_state": life, "state_message": message}
        if result:
            run.state["result_state"] = result
        self.active -= 1

    def _result_line(self, result: dict[str, Any]) -> str:
        return f"some driver output\n{RESULT_MARKER}{json.dumps(result)}\n"

    def _finish_outcome(self, run: SimRun) -> None:
        steps = [s["step"] for s in run.statements]
        if run.outcome == "success":
            last = run.statements[-1]["sql"]
            target = parse_identifiers(re.sub(r"^CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?", "", last))
            name = ".".join(target)
            if name not in self.tables or " OR REPLACE " in last:
                self.tables[name] = parse_properties(last)
            run.logs = self._result_line({"ok": True, "done": [{"step": s, "metrics": {}} for s in steps]})
            self._finish(run, "TERMINATED", "SUCCESS", "")
        elif run.outcome in ("sql_error", "clone_refused"):
            failing = "clone" if run.outcome == "clone_refused" else steps[-1]
            error = (
                {"error_class": "UNSUPPORTED_FEATURE.CLONE_SOURCE", "sqlstate": "0AKDC", "message": "not supported"}
                if run.outcome == "clone_refused"
                else {
                    "error_class": "TABLE_OR_VIEW_NOT_FOUND",
                    "sqlstate": "42P01",
                    "message": "[TABLE_OR_VIEW_NOT_FOUND] The table or view `uc_foreign`.`sales`.`orders` "
                    "cannot be found.",
                }
            )
            run.logs = self._result_line({"ok": False, "step": failing, "done": [], **error})
            self._finish(run, "TERMINATED", "FAILED", "Task icebridge_copy failed with message: see output")
        elif run.outcome == "cluster_failure":
            run.status = {
                "state": "TERMINATED",
                "termination_details": {
                    "code": "CLUSTER_ERROR",
                    "type": "CLOUD_FAILURE",
                    "message": "Cloud provider launch failure",
                },
            }
            self._finish(run, "TERMINATED", "FAILED", "Cluster terminated: CLOUD_PROVIDER_LAUNCH_FAILURE")
        elif run.outcome == "internal_error":
            self._finish(run, "INTERNAL_ERROR", None, "An internal error occurred in the Jobs service")
        else:
            raise AssertionError(f"unknown scripted outcome {run.outcome!r}")

    def _run_json(self, run: SimRun) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "run_page_url": f"{self.url}/#job/runs/{run.run_id}",
            "state": dict(run.state),
            "tasks": [{"run_id": run.task_run_id, "task_key": "icebridge_copy", "state": dict(run.state)}],
        }
        if run.status:
            out["status"] = run.status
        return out

    def _run_arg(self, query: dict[str, str], key: str = "run_id") -> int:
        if key not in query:
            raise ShapeError(f"missing required query parameter {key}")
        try:
            return int(query[key])
        except ValueError:
            raise ShapeError(f"{key} must be an integer, got {query[key]!r}") from None

    def _get_run(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        run_id = self._run_arg(query)
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Run {run_id} does not exist."}
            self._advance(run)
            return 200, self._run_json(run)

    def _get_output(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        task_run_id = self._run_arg(query)
        with self.lock:
            run = next((r for r in self.runs.values() if r.task_run_id == task_run_id), None)
            if run is None:
                if task_run_id in self.runs:
                    raise ShapeError("runs/get-output takes the task's run_id, not the parent run's")
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Run {task_run_id} does not exist."}
            out: dict[str, Any] = {"metadata": self._run_json(run)}
            if run.logs:
                out["logs"] = run.logs
            if run.state.get("result_state") == "FAILED":
                out["error"] = "Task failed"
            return 200, out

    def _cancel(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        _check_fields("runs/cancel", body, {"run_id"}, {"run_id"})
        with self.lock:
            run = self.runs.get(int(body["run_id"]))
            if run is None:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "no such run"}
            run.cancelled = True
        return 200, {}

    def _list_runs(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        allowed = {"active_only", "completed_only", "expand_tasks", "job_id", "limit", "offset", "page_token"}
        unknown = set(query) - allowed - {"run_type", "start_time_from", "start_time_to"}
        if unknown:
            raise ShapeError(f"runs/list: unknown query parameter(s) {sorted(unknown)}")
        if query.get("run_type") not in (None, "JOB_RUN", "WORKFLOW_RUN", "SUBMIT_RUN"):
            raise ShapeError(f"runs/list: bad run_type {query.get('run_type')!r}")
        with self.lock:
            runs = [self._run_json(r) for r in self.runs.values() if not (query.get("active_only") and r.terminal)]
        return 200, {"runs": runs, "has_more": False}

    def _metastore(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        return 200, {
            "metastore_id": "ms-0001",
            "name": "contract-metastore",
            "external_access_enabled": self.external_access_enabled,
        }

    def _table_exists(self, query: dict[str, str], body: Any, name: str) -> tuple[int, Any]:
        return 200, {"table_exists": name in self.tables}

    def _table(self, query: dict[str, str], body: Any, name: str) -> tuple[int, Any]:
        if name not in self.tables:
            return 404, {"error_code": "TABLE_DOES_NOT_EXIST", "message": f"Table '{name}' does not exist."}
        cat, schema, table = name.split(".")
        return 200, {
            "name": table,
            "catalog_name": cat,
            "schema_name": schema,
            "full_name": name,
            "table_type": "MANAGED",
            "data_source_format": "ICEBERG",
            "properties": self.tables[name],
        }

    def _eff(self, query: dict[str, str], body: Any, kind: str, name: str) -> tuple[int, Any]:
        if kind not in ("catalog", "schema", "table", "metastore", "external_location", "function", "volume"):
            raise ShapeError(f"effective-permissions: unknown securable type {kind!r}")
        return 200, {"privilege_assignments": self.effective.get((kind, name), [])}

    def _statement(self, query: dict[str, str], body: Any) -> tuple[int, Any]:
        _check_fields("sql/statements", body, STATEMENT_FIELDS, {"statement", "warehouse_id"})
        wait = body.get("wait_timeout", "10s")
        if not re.fullmatch(r"0s|([5-9]|[1-4][0-9]|50)s", wait):
            raise ShapeError(f"sql/statements: wait_timeout must be 0s or 5s..50s, got {wait!r}")
        for p in body.get("parameters", []):
            _check_fields("sql/statements parameters[]", p, {"name", "value", "type"}, {"name"})
            if f":{p['name']}" not in body["statement"]:
                raise ShapeError(f"sql/statements: parameter {p['name']!r} is not used in the statement")
        for match, columns, rows in self.statement_results:
            if match(body["statement"]):
                return 200, {
                    "statement_id": "st-1",
                    "status": {"state": "SUCCEEDED"},
                    "manifest": {
                        "format": "JSON_ARRAY",
                        "schema": {
                            "column_count": len(columns),
                            "columns": [{"name": c, "position": i} for i, c in enumerate(columns)],
                        },
                        "total_row_count": len(rows),
                    },
                    "result": {"chunk_index": 0, "row_count": len(rows), "data_array": rows},
                }
        return 200, {
            "statement_id": "st-1",
            "status": {"state": "SUCCEEDED"},
            "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": 0, "columns": []}},
            "result": {"chunk_index": 0, "row_count": 0, "data_array": []},
        }


@pytest.fixture
def contract_server() -> Iterator[ContractServer]:
    """The contract server on 127.0.0.1 with a random port; fails the test if any request had a wrong shape."""
    server = ContractServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert server.violations == [], f"requests the real API would reject: {server.violations}"


@pytest.fixture(autouse=True)
def _isolated_sdk_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DATABRICKS_* variable or ~/.databrickscfg of the machine may leak into a test."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("HOME", str(tmp_path))


def make_config(tmp_path: Path, **settings: Any) -> Config:
    """A configuration whose only interesting part is ``engines.databricks``."""
    base: dict[str, Any] = {
        "cluster": {"node_type_id": "i3.xlarge", "num_workers": 1},
        "poll_interval_seconds": 0.01,
        "retry_backoff_seconds": 0.0,
        "retry_timeout_seconds": 5,
        "http_timeout_seconds": 5,
        "warehouse_id": "wh-contract",
        "catalog_map": {"foreign": "uc_foreign", "managed": "main"},
    }
    base.update(settings)
    return Config(
        path=tmp_path / "icebridge.yaml",
        state_url="sqlite://",
        catalogs={},
        mappings=(),
        migrate=MigrateSettings(),
        engines={"databricks": base},
    )
