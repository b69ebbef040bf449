"""The routes the wizard's pages need, through a real server: the page itself (public, without data),
mapping rules previewed and saved into the configuration file, inventory pages, the storage check
and sync lag."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from typing import Any

import httpx

from icebridge.config import load_config
from tests.api.conftest import TOKEN
from tests.integration.estate import events_arrow
from tests.integration.test_behaviour import Estate

COLLIDING = [{"source": "foreign.*.*", "target": "managed.all", "rename": "one"}]


def test_the_page_is_public_and_holds_no_data(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "foreign" not in page.text and "managed" not in page.text  # no catalog, no table: only the shell
    assert httpx.get(server.url + "/ui/js/app.js").status_code == 200
    assert httpx.get(server.url + "/ui/js/nothing.js").status_code == 404
    closed = (("POST", "/"), ("GET", "/api/v1/mappings"), ("GET", "/api/v1/inventory/tables"), ("GET", "/ui"))
    for method, path in closed:
        answer = httpx.request(method, server.url + path)
        assert answer.status_code == 401, (method, path, answer.text)


def test_rules_are_previewed_then_saved_where_the_cli_reads_them(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client()
    assert client.post("/api/v1/inventory", json={"refresh": True}).status_code == 200
    rules = client.get("/api/v1/mappings").json()
    assert [r["source"] for r in rules["rules"]] == ["foreign.shop.customers", "foreign.*.*"]
    assert rules["path"] == str(est.config) and "rewrite" in rules["strategies"]

    preview = client.post("/api/v1/mappings/preview", json={"rules": COLLIDING}).json()
    assert preview["valid"] and preview["collisions"] == preview["mapped"] == 5
    row = next(t for t in preview["tables"] if t["source"] == "foreign.shop.events")
    assert row["destination"] == "managed.all.one" and row["blocked"] and row["collision"]
    assert "destination-collision" in [f["code"] for f in row["findings"]]

    bad = [
        {"source": "foreign.shop", "target": "elsewhere.x"},
        {"source": "foreign.*.*", "target": "managed.{namespace}"},
    ]
    preview = client.post("/api/v1/mappings/preview", json={"rules": bad}).json()
    assert not preview["valid"] and preview["tables"] == []
    assert {(e["index"], e["field"]) for e in preview["rule_errors"]} == {(0, "source")}
    preview = client.post("/api/v1/mappings/preview", json={"rules": [{"source": "foreign.*.*", "target": "other.x"}]})
    assert preview.json()["rule_errors"][0]["message"] == "unknown catalog 'other'; configured: foreign, managed"
    unmatched = [{"source": "foreign.nope.*", "target": "managed.x"}, *rules["rules"]]
    assert client.post("/api/v1/mappings/preview", json={"rules": unmatched}).json()["unmatched_rules"] == [0]

    before = est.config.read_bytes()
    refused = client.put("/api/v1/mappings", json={"rules": bad, "version": rules["version"]})
    assert refused.status_code == 400 and refused.json()["error"] == "ConfigError"
    assert refused.json()["message"].startswith(f"{est.config}: mappings[0].source:")
    stale = client.put("/api/v1/mappings", json={"rules": rules["rules"], "version": "0" * 32})
    assert stale.status_code == 409 and stale.json()["error"] == "ConfigChangedError"
    assert est.config.read_bytes() == before  # nothing changed by either

    renamed = [{"source": "foreign.shop.events", "target": "managed.archive", "rename": "old_{table}"}, *rules["rules"]]
    saved = client.put("/api/v1/mappings", json={"rules": renamed, "version": rules["version"]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] != rules["version"]
    config = load_config(est.config)
    assert [r.source for r in config.mappings] == ["foreign.shop.events", "foreign.shop.customers", "foreign.*.*"]
    assert config.catalogs["foreign"] == load_config_catalogs(before, est.config)
    code, plan = est.cli_json("plan")  # the CLI plans with the saved rules
    assert code == 0
    destinations = {t["source"]: t["destination"] for t in plan["tables"]}
    assert destinations["foreign.shop.events"] == "managed.archive.old_events"
    # and so does the server, without a restart
    planned = client.post("/api/v1/plans", json={"tables": "foreign.shop.events"}).json()
    assert planned["tables"][0]["destination"] == "managed.archive.old_events"
    # a save over the old version now fails: the file moved on
    again = client.put("/api/v1/mappings", json={"rules": rules["rules"], "version": rules["version"]})
    assert again.status_code == 409


def load_config_catalogs(raw: bytes, path: Path) -> dict[str, str]:
    """The foreign catalog's properties as the file said before the save."""
    copy = path.with_name("before.yaml")
    copy.write_bytes(raw)
    return load_config(copy).catalogs["foreign"]


def test_inventory_pages_search_sort_and_cut(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client()
    empty = client.get("/api/v1/inventory/tables").json()
    assert empty["captured_at"] is None and empty["total"] == 0  # nothing read from the catalogs by a GET
    client.post("/api/v1/inventory", json={"refresh": True})
    page = client.get("/api/v1/inventory/tables", params={"q": "EVENTS", "sort": "bytes", "desc": "true"}).json()
    assert page["total"] == 5 and page["matched"] == 2
    assert [r["table"] for r in page["rows"]] == sorted(
        ["foreign.shop.events", "foreign.odd-ns.order events"],
        key=lambda t: -next(r["bytes"] for r in page["rows"] if r["table"] == t),
    )
    cut = client.get("/api/v1/inventory/tables", params={"offset": 1, "limit": 2}).json()
    assert [r["table"] for r in cut["rows"]] == ["foreign.shop.customers", "foreign.shop.empty"]
    assert {n["namespace"] for n in cut["namespaces"]} == {"foreign.shop", "foreign.odd-ns"}
    customers = client.get("/api/v1/inventory/tables", params={"q": "schema evolution"}).json()
    assert [r["table"] for r in customers["rows"]] == ["foreign.shop.customers"]
    for params in ({"limit": 501}, {"sort": "colour"}, {"offset": -1}):
        answer = client.get("/api/v1/inventory/tables", params=params)
        assert answer.status_code == 422, params


def test_storage_check_and_lag(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client()
    check = client.post("/api/v1/storage/check", json={"catalog": "managed"}).json()
    warehouse = est.managed_props["warehouse"].rstrip("/")
    assert check["writable"] is True and check["location"] == warehouse
    assert re.fullmatch(r"wrote, read back and deleted a probe under .+", check["message"])
    if warehouse.startswith("file://"):
        assert not list(Path(warehouse.removeprefix("file://")).glob(".icebridge-probe-*"))
    missing = client.post("/api/v1/storage/check", json={"catalog": "nowhere"})
    assert missing.status_code == 404 and "configured: foreign, managed" in missing.json()["message"]

    assert client.get("/api/v1/lag").json() == {"tables": [], "more": 0}
    assert est.cli("migrate")[0] == 0
    lag = {t["source"]: t for t in client.get("/api/v1/lag").json()["tables"]}
    assert lag["foreign.shop.events"]["snapshots_behind"] == 0
    est.foreign().load_table(("shop", "events")).append(events_arrow(10_000, 5))
    after = client.get("/api/v1/lag", params={"tables": "foreign.shop.events"}).json()
    assert [t["snapshots_behind"] for t in after["tables"]] == [1]


def test_only_the_mappings_section_of_the_file_is_rewritten(tmp_path: Path) -> None:
    from icebridge.app.mappings import replace_mappings
    from icebridge.config import MappingRule

    rules = [MappingRule(source="foreign.a.*", target="managed.b", rename="x_{table}")]
    section = "mappings:\n- source: foreign.a.*\n  target: managed.b\n  rename: x_{table}\n"
    head = "# my estate\nstate: ${STATE_URL}\ncatalogs:\n  foreign: {type: sql, uri: 'sqlite:///f.db'}\n"
    tail = "# after the rules\nmigrate:\n  concurrency: 3  # two cores\n"
    block = "mappings:\n  # first match wins\n  - source: foreign.*.*\n    target: managed.{namespace}\n"
    assert replace_mappings(head + block + tail, tmp_path, rules) == head + section + tail
    flow = "mappings: [{source: foreign.*.*, target: managed.x}]  # one rule\n"
    assert replace_mappings(head + flow + tail, tmp_path, rules) == head + section + tail
    last = "mappings:\n- source: foreign.*.*\n  target: 'managed.{namespace}'"  # no newline at the end
    assert replace_mappings(head + last, tmp_path, rules) == head + section
    assert replace_mappings(head, tmp_path, rules) == head + section  # none yet: added at the end


def test_a_symlinked_configuration_stays_a_symlink(est: Estate) -> None:
    from icebridge.app.mappings import MappingService, RuleInput, SaveRequest
    from icebridge.context import AppContext

    link = est.root / "linked.yaml"
    link.symlink_to(est.config)
    ctx = AppContext(load_config(link))
    try:
        service = MappingService(ctx)
        version = service.rules().version
        rule = RuleInput(source="foreign.*.*", target="managed.copies")
        service.save(SaveRequest(rules=[rule], version=version))
    finally:
        ctx.close()
    assert link.is_symlink() and link.resolve() == est.config.resolve()
    assert [r.target for r in load_config(est.config).mappings] == ["managed.copies"]
    assert [p.name for p in est.root.glob(".*.tmp")] == []  # no temporary file left behind


def test_the_cutover_preview_names_what_changes_and_changes_nothing(est: Estate, serve: Any) -> None:
    assert est.cli("migrate", "--tables", "foreign.shop.events")[0] == 0
    server = serve(est.config)
    client = server.client()
    preview = client.post(
        "/api/v1/tasks/cutover-preview", json={"command": "cutover", "tables": ["foreign.shop.events"]}
    )
    assert preview.status_code == 200, preview.text
    (table,) = preview.json()["tables"]
    assert table["source"] == "foreign.shop.events" and table["destination"] == "managed.shop.events"
    assert table["governance"] == "none" and table["governance_error"] is None
    assert table["changes"] == [
        "Writers (none governance): no write privileges to revoke: catalog 'foreign' is an open catalog; "
        "writers are stopped only by the quiet-period check.",
        "Quiet period: none (cutover.quiet_seconds is 0).",
        "The source's commits since the copy are synced, then the table is validated again; "
        "a failure stops the cut-over here.",
        "Grants (none governance): no grants to swap: 'foreign' and 'managed' are open catalogs.",
        "The entry foreign.shop.events is dropped from its catalog (no file is deleted) and its metadata "
        "location archived for a roll back; readers then read managed.shop.events.",
    ]
    assert est.foreign().table_exists(("shop", "events"))  # a preview changes nothing
    unknown = client.post("/api/v1/tasks/cutover-preview", json={"command": "cutover", "tables": ["foreign.no.such"]})
    assert unknown.status_code == 404 and "no task for foreign.no.such" in unknown.json()["message"]
    empty = client.post("/api/v1/tasks/cutover-preview", json={"command": "cutover", "tables": []})
    assert empty.status_code == 422

    assert est.cli("cutover", "--tables", "foreign.shop.events")[0] == 0
    back = client.post("/api/v1/tasks/cutover-preview", json={"command": "rollback", "tables": ["foreign.shop.events"]})
    changes = back.json()["tables"][0]["changes"]
    archived = est.tasks()["foreign.shop.events"].archived_metadata_location  # type: ignore[attr-defined]
    assert archived and archived.endswith(".metadata.json")
    assert changes[1] == f"foreign.shop.events is registered again in its catalog from {archived}."
    assert changes[2] == (
        "Grants (none governance): nothing to undo: the swap from foreign.shop.events to managed.shop.events "
        "changed no grant."
    )


def raw_get(server: Any, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
    """A GET of ``path`` exactly as written: no client normalizes its dot segments or its escapes."""
    url = httpx.URL(server.url)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_data_docs_are_served_from_the_runs_folder_only(est: Estate, serve: Any) -> None:
    est.config.write_text(est.config.read_text() + "reports:\n  data_docs: true\n")
    for table in ("foreign.shop.events", "foreign.shop.customers"):  # customers: rewritten, so GX has metrics
        code, out = est.cli("migrate", "--tables", table)
        assert code == 0, out
    server = serve(est.config)
    client = server.client()
    runs = [r for r in client.get("/api/v1/runs").json() if r["kind"] == "migrate"]
    run_id = max(r["id"] for r in runs)
    report = client.get(f"/api/v1/reports/{run_id}").json()
    pages = report["data_docs"]
    assert pages[0] == "index.html" and any(p.startswith("validations/") for p in pages), pages
    index = client.get(f"/api/v1/reports/{run_id}/data-docs/index.html")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "Data Docs" in index.text or "great_expectations" in index.text.lower()
    validation = client.get(f"/api/v1/reports/{run_id}/data-docs/{pages[-1]}")
    assert validation.status_code == 200 and "shop.customers" in validation.text
    assert client.get(f"/api/v1/reports/{run_id}/data-docs/").text == index.text  # the index for the site
    assert raw_get(server, f"/api/v1/reports/{run_id}/data-docs/index.html", token=None)[0] == 401

    # nothing outside this run's Data Docs folder: its own report.html next to it, the other run's, the system's
    folder = Path(est.config.parent / ".icebridge" / "reports" / f"run-{run_id}")
    assert (folder / "report.html").is_file()
    (folder / "gx" / "outside.html").symlink_to(folder / "report.html")
    escapes = [
        "../report.html",
        "%2e%2e/report.html",
        "..%2freport.html",
        "%2E%2E%2Freport.html",
        "validations/../../report.html",
        f"../../run-{run_id - 1}/report.html",
        "%2e%2e%2f%2e%2e%2frun-1%2freport.html",
        "..%5creport.html",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "outside.html",
        "no-such.html",
    ]
    for page in escapes:
        status, body = raw_get(server, f"/api/v1/reports/{run_id}/data-docs/{page}")
        assert status == 404, (page, status, body[:200])
        assert b"<html" not in body.lower() and b"root:" not in body, page
    other = client.get(f"/api/v1/reports/{run_id}/data-docs/{pages[0]}")
    assert other.status_code == 200  # the site itself is still served

    # a run that wrote none says so
    est.config.write_text(est.config.read_text().replace("data_docs: true", "data_docs: false"))
    code, _ = est.cli("validate", "--tables", "foreign.shop.events")
    assert code == 0
    newest = max(r["id"] for r in client.get("/api/v1/runs").json())
    assert client.get(f"/api/v1/reports/{newest}").json()["data_docs"] == []
    missing = client.get(f"/api/v1/reports/{newest}/data-docs/index.html")
    assert missing.status_code == 404 and "wrote no Great Expectations Data Docs" in missing.json()["message"]


def test_a_save_keeps_what_the_page_does_not_edit(est: Estate) -> None:
    from icebridge.app.mappings import MappingService, SaveRequest
    from icebridge.context import AppContext

    kept = "strategy: rewrite\n  history: all\n  governance: none\n"
    est.config.write_text(est.config.read_text().replace("strategy: rewrite\n", kept))
    ctx = AppContext(load_config(est.config))
    try:
        service = MappingService(ctx)
        current = service.rules()
        assert (current.rules[0].history, current.rules[0].governance) == ("all", "none")
        service.save(SaveRequest(rules=current.rules, version=current.version))
    finally:
        ctx.close()
    saved = load_config(est.config).mappings
    assert [(r.history, r.governance) for r in saved] == [("all", "none"), ("current", None)]
    assert est.config.read_text().count("history:") == 1  # a default is not written out
