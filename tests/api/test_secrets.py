"""No secret in any response body, header or log line of the server, on every route and error path.

The catalogs' password reaches the configuration through ``${VAR}`` inside PostgreSQL URIs (the state
store's too); the user's forwarded access token is sent with every request. Neither may show up in
anything the server answers or logs, and the access token is never stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.api.conftest import TOKEN, sse_events, wait_for_run
from tests.integration.test_behaviour import make_estate

PASSWORD = "Sup3r-S3cret-pw-4711"
ACCESS = "dapi-user-access-token-0042-xyz"


def with_password(url: str) -> str:
    return make_url(url).set(password="${CATALOG_PASSWORD}").render_as_string(hide_password=False)


@pytest.mark.postgres
def test_no_secret_in_any_answer_header_or_log_line(tmp_path: Path, pg_server: str, serve: Any) -> None:
    from tests.conftest import fresh_pg_database

    backend = {
        "kind": "postgres",
        "state": fresh_pg_database(pg_server, "ib_state_"),
        "foreign": fresh_pg_database(pg_server, "ib_foreign_"),
        "managed": fresh_pg_database(pg_server, "ib_managed_"),
    }
    est = make_estate(tmp_path, backend)
    config = yaml.safe_load(est.config.read_text())
    config["state"] = with_password(backend["state"])
    for name in ("foreign", "managed"):
        config["catalogs"][name]["uri"] = with_password(config["catalogs"][name]["uri"])
    config["catalogs"]["broken"] = {
        "type": "sql",
        "uri": "postgresql+psycopg2://postgres:${CATALOG_PASSWORD}@127.0.0.1:1/x",
    }
    est.config.write_text(yaml.safe_dump(config))
    assert PASSWORD not in est.config.read_text()

    server = serve(est.config, env={"CATALOG_PASSWORD": PASSWORD})
    client = server.client({"X-Forwarded-Email": "ada@example.com", "X-Forwarded-Access-Token": ACCESS})
    answers: list[httpx.Response] = []

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = client.request(method, path, **kwargs)
        answers.append(answer)
        return answer

    assert call("GET", "/api/v1/catalogs").status_code == 200
    assert call("POST", "/api/v1/catalogs/foreign/test").json()["reachable"] is True
    broken = call("POST", "/api/v1/catalogs/broken/test").json()
    assert broken["reachable"] is False and broken["error"]
    call("POST", "/api/v1/catalogs/nowhere/test")
    call("GET", "/api/v1/inventory")
    call("POST", "/api/v1/inventory", json={"refresh": True})
    call("POST", "/api/v1/preflight", json={"tables": "foreign.shop.events"})
    call("POST", "/api/v1/plans", json={})
    call("POST", "/api/v1/plans/scripts", json={"tables": "foreign.shop.events"})
    call("POST", "/api/v1/plans", json={"tables": "foreign.nowhere.*"})
    call("POST", "/api/v1/runs", json={"command": "migrate", "bogus": PASSWORD})  # the password sent back? never
    run = call("POST", "/api/v1/runs", json={"command": "migrate"}).json()
    events = sse_events(client, run["id"])
    assert events[-1][1]["status"] == "succeeded"
    wait_for_run(client, run["id"])
    call("GET", f"/api/v1/runs/{run['id']}")
    events_again = client.get(f"/api/v1/runs/{run['id']}/events")
    answers.append(events_again)
    call("POST", f"/api/v1/runs/{run['id']}/cancel")
    call("POST", "/api/v1/runs", json={"command": "validate"})
    call("GET", "/api/v1/runs")
    call("GET", "/api/v1/runs/424242")
    call("GET", "/api/v1/tasks")
    call("GET", "/api/v1/tasks/1")
    call("GET", "/api/v1/tasks/424242")
    call("GET", f"/api/v1/reports/{run['id']}")
    call("GET", f"/api/v1/reports/{run['id']}/html")
    call("GET", "/api/v1/reports/1/html")
    call("GET", "/api/v1/audit", params={"run_id": run["id"], "limit": 10_000})
    call("GET", "/api/v1/audit", params={"table": "foreign.shop.missing"})
    call("GET", "/metrics")
    call("GET", "/openapi.json")
    call("GET", "/docs")
    call("POST", "/api/v1/runs", content=b"x" * (3 * 1024 * 1024), headers={"content-type": "application/json"})
    answers.append(httpx.get(server.url + "/api/v1/runs", headers={"Authorization": f"Bearer {PASSWORD}"}))
    assert {a.status_code for a in answers} >= {200, 202, 401, 404, 409, 413, 422}
    assert all(a.status_code < 500 for a in answers), [
        (a.request.url, a.status_code) for a in answers if a.status_code >= 500
    ]

    # the access token reached the worker process that ran the run over its pipe, never as an argument
    # (which anyone on the machine can read: ps) or in its environment
    tasks = Path(f"/proc/{server.proc.pid}/task").glob("*/children")  # children of each of the server's threads
    workers = [pid for task in tasks for pid in task.read_text().split()]
    assert len(workers) == 2, workers  # service.workers' default
    for pid in workers:
        assert b"icebridge.app.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        cmdline, environ = (Path(f"/proc/{pid}/{view}").read_bytes() for view in ("cmdline", "environ"))
        assert ACCESS.encode() not in cmdline and PASSWORD.encode() not in cmdline, f"a secret in {pid}'s arguments"
        # (the environment is the server's own, the catalog password's variable included, as the operator set it)
        assert ACCESS.encode() not in environ, f"the access token in the environment of {pid}"

    server.stop()
    for answer in answers:
        shown = answer.text + "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
        for secret in (PASSWORD, ACCESS, TOKEN):
            assert secret not in shown, f"{secret[:4]}… in the answer to {answer.request.method} {answer.request.url}"
    log = server.log_text()
    assert "GET /api/v1/runs" in log  # the log is there to be searched
    for secret in (PASSWORD, ACCESS, TOKEN):
        assert secret not in log, f"{secret[:4]}… in the server's log"

    engine = create_engine(backend["state"])  # the user's access token is never stored; only the name
    try:
        with engine.connect() as connection:
            dump = "".join(
                str(row)
                for table in inspect(engine).get_table_names()
                for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()
    assert ACCESS not in dump and PASSWORD not in dump and TOKEN not in dump
    assert "ada@example.com" in dump
