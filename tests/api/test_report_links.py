"""Signed report links: a run's report folder (its HTML report, its Data Docs site) opened in a browser tab
without the bearer token, only for that run, only until the link expires, only inside that folder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from icebridge.app.reports import LINK_SECONDS, ReportLinks
from icebridge.config import load_config
from tests.api.conftest import TOKEN
from tests.api.test_wizard_routes import raw_get
from tests.integration.test_behaviour import Estate

KEY = hmac.new(TOKEN.encode(), b"icebridge report links v1", hashlib.sha256).digest()


def test_a_token_holds_for_its_run_until_it_expires() -> None:
    now = [1_000_000.0]
    links = ReportLinks(b"k" * 32, clock=lambda: now[0], seconds=900)
    token, expires = links.sign(7)
    assert expires == datetime.fromtimestamp(1_000_900, UTC)
    assert links.valid(7, token)
    now[0] = 1_000_900  # the last second it holds
    assert links.valid(7, token)
    now[0] = 1_000_901
    assert not links.valid(7, token)
    now[0] = 1_000_000
    assert not links.valid(8, token)  # another run
    assert not ReportLinks(b"x" * 32, clock=lambda: now[0]).valid(7, token)  # another server's key
    expiry, _, mac = token.partition(".")
    assert not links.valid(7, f"{int(expiry) + 60}.{mac}")  # a later expiry is not signed
    assert not links.valid(7, f"{expiry}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}")
    for garbage in ("", ".", "abc", f"{expiry}", f"{expiry}.", f".{mac}", f"-1.{mac}", f"{'9' * 40}.{mac}"):
        assert not links.valid(7, garbage), garbage

    path = f"/reports/7/s/{token}/gx/index.html"
    assert links.admits("GET", path) and links.admits("HEAD", path)
    assert not links.admits("POST", path)
    assert not links.admits("GET", f"/reports/8/s/{token}/gx/index.html")
    assert not links.admits("GET", f"/api/v1/reports/7/s/{token}/gx/index.html")
    assert not links.admits("GET", f"/reports/7/x/{token}/report.html")
    # a server without auth still signs (a random key of its own), and its links are not another's
    assert ReportLinks.for_token(None).sign(7)[0] != ReportLinks.for_token(None).sign(7)[0]
    assert ReportLinks.for_token(TOKEN).valid(7, ReportLinks.for_token(TOKEN).sign(7)[0])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_link_opens_the_runs_reports_and_nothing_else(est: Estate, serve: Any) -> None:
    est.config.write_text(est.config.read_text() + "reports:\n  data_docs: true\n")
    for table in ("foreign.shop.events", "foreign.shop.customers"):  # customers: rewritten, so GX has metrics
        code, out = est.cli("migrate", "--tables", table)
        assert code == 0, out
    server = serve(est.config)
    client = server.client()
    runs = sorted(r["id"] for r in client.get("/api/v1/runs").json() if r["kind"] == "migrate")
    earlier, run_id = runs[-2], runs[-1]
    pages = client.get(f"/api/v1/reports/{run_id}").json()["data_docs"]
    assert pages[0] == "index.html" and any(p.startswith("validations/") for p in pages), pages

    assert httpx.post(f"{server.url}/api/v1/reports/{run_id}/links").status_code == 401  # asking needs the token
    missing = client.post("/api/v1/reports/999999/links")
    assert missing.status_code == 404 and "no run 999999" in missing.json()["message"]
    answer = client.post(f"/api/v1/reports/{run_id}/links")
    assert answer.status_code == 200, answer.text
    link = answer.json()
    token = link["base"].split("/")[4]
    assert link["base"] == f"/reports/{run_id}/s/{token}/"
    assert link["html"] == link["base"] + "report.html"
    assert link["data_docs"] == link["base"] + "gx/index.html"
    lasts = datetime.fromisoformat(link["expires_at"]).timestamp() - time.time()
    assert LINK_SECONDS - 60 < lasts <= LINK_SECONDS
    for secret in (TOKEN, KEY.hex(), base64.urlsafe_b64encode(KEY).decode().rstrip("=")):
        assert secret not in answer.text

    # within the link: no Authorization, and the site's own pages, styles and images resolve from the index
    index = httpx.get(server.url + link["data_docs"])
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "Data Docs" in index.text
    assert index.headers["referrer-policy"] == "no-referrer"
    assert index.headers["cache-control"] == "no-store"
    assert index.headers["x-content-type-options"] == "nosniff"
    policy = index.headers["content-security-policy"]
    assert "'unsafe-inline'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    hosts = set(re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https://[^/"]+)/', index.text))
    assert hosts, "the generated index loads nothing from a CDN: the policy's list of them is stale"
    for host in hosts:  # whatever Great Expectations' pages load is allowed by their policy
        assert host in policy, (host, policy)
    site = link["data_docs"].removesuffix("index.html")
    for page in pages[1:]:
        shown = httpx.get(server.url + site + page)
        assert shown.status_code == 200 and shown.headers["content-security-policy"] == policy, page
    assert "shop.customers" in httpx.get(server.url + site + pages[-1]).text
    for asset in re.findall(r'(?:src|href)="(\./static/[^"]+)"', index.text):
        assert httpx.get(server.url + site + asset.removeprefix("./")).status_code == 200, asset
    css = httpx.get(server.url + site + "static/styles/data_docs_default_styles.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    report = httpx.get(server.url + link["html"])
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert report.headers["content-security-policy"].startswith("default-src 'none'")
    assert report.headers["referrer-policy"] == "no-referrer" and report.headers["cache-control"] == "no-store"

    # wrong, expired, another server's, another run's: 401 and nothing served
    expiry, _, mac = token.partition(".")
    flipped = f"{expiry}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
    expired = ReportLinks(KEY, clock=lambda: time.time() - LINK_SECONDS - 60).sign(run_id)[0]
    elsewhere = ReportLinks.for_token("another-server-token-0123456789").sign(run_id)[0]
    refused = [
        f"/reports/{run_id}/s/{flipped}/report.html",
        f"/reports/{run_id}/s/{expired}/report.html",
        f"/reports/{run_id}/s/{elsewhere}/gx/index.html",
        f"/reports/{earlier}/s/{token}/report.html",
        f"/reports/{run_id}/s/{int(expiry) + 600}.{mac}/report.html",
    ]
    for path in refused:
        status, body = raw_get(server, path, token=None)
        assert status == 401, (path, status, body[:200])
        assert b"<html" not in body.lower() and b"expired" in body, path
    assert raw_get(server, f"/reports/{run_id}/s/{TOKEN}/report.html", token=None)[0] == 401  # not a link at all
    # with the bearer token but a wrong link: the route checks the link itself
    status, body = raw_get(server, f"/reports/{run_id}/s/{flipped}/report.html")
    assert status == 404 and b"<html" not in body.lower()
    # a valid signature for a run the store does not know
    unknown = ReportLinks(KEY).sign(999999)[0]
    assert raw_get(server, f"/reports/999999/s/{unknown}/report.html", token=None)[0] == 404

    # inside the run's folder only: no dot segments (plain or encoded), absolute paths, or links out of it
    folder = est.config.parent / ".icebridge" / "reports" / f"run-{run_id}"
    assert (folder.parent / f"run-{earlier}" / "report.html").is_file()
    (folder / "gx" / "outside.html").symlink_to(folder.parent / f"run-{earlier}" / "report.html")
    (folder / "inside.html").symlink_to(folder / "report.html")
    escapes = [
        "",
        f"../run-{earlier}/report.html",
        f"%2e%2e/run-{earlier}/report.html",
        f"..%2frun-{earlier}%2freport.html",
        f"%2E%2E%2Frun-{earlier}%2Freport.html",
        f"gx/../../run-{earlier}/report.html",
        "../../../../../../../../etc/passwd",
        f"..%5crun-{earlier}%5creport.html",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "report.html%00.css",
        "gx/outside.html",
        "no-such.html",
        "gx",
    ]
    for page in escapes:
        status, body = raw_get(server, link["base"] + page, token=None)
        assert status == 404, (page, status, body[:200])
        assert b"<html" not in body.lower() and b"root:" not in body, page
    assert raw_get(server, link["base"] + "inside.html", token=None)[0] == 200  # a link that stays inside
    assert raw_get(server, link["base"] + "gx/../report.html", token=None)[0] == 200
    # the API's own routes are not opened by a link
    assert raw_get(server, f"{link['base']}../../../../api/v1/runs", token=None)[0] in (401, 404)
    assert raw_get(server, "/api/v1/runs", token=None)[0] == 401

    # the server's log lines show the links with their tokens hidden
    server.stop()
    log = server.log_text()
    assert f"/reports/{run_id}/s/***/gx/index.html" in log, log[-2000:]
    for secret in (token, flipped, expired, elsewhere, TOKEN, mac):
        assert secret not in log


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_without_auth_the_route_checks_the_link_itself(est: Estate, serve: Any) -> None:
    code, out = est.cli("migrate", "--tables", "foreign.shop.events")
    assert code == 0, out
    server = serve(est.config, "--no-auth")
    client = httpx.Client(base_url=server.url, timeout=60)
    server.clients.append(client)
    run_id = max(r["id"] for r in client.get("/api/v1/runs").json())
    link = client.post(f"/api/v1/reports/{run_id}/links").json()
    assert link["data_docs"] is None  # this run wrote no Data Docs
    assert client.get(link["html"]).status_code == 200
    forged = ReportLinks.for_token(None).sign(run_id)[0]  # another process's random key
    refused = client.get(f"/reports/{run_id}/s/{forged}/report.html")
    assert refused.status_code == 404 and "expired" in refused.json()["message"]
    assert "<html" not in refused.text.lower()


def test_a_link_in_a_log_line_is_redacted(tmp_path: Path) -> None:
    config = tmp_path / "icebridge.yaml"
    config.write_text(
        f"catalogs:\n  foreign: {{type: sql, uri: 'sqlite:///{tmp_path}/f.db'}}\n"
        f"  managed: {{type: sql, uri: 'sqlite:///{tmp_path}/m.db'}}\n"
        "mappings:\n  - {source: 'foreign.*.*', target: 'managed.{namespace}'}\n"
    )
    token = ReportLinks(KEY).sign(3)[0]
    line = f'127.0.0.1:5 - "GET /reports/3/s/{token}/gx/index.html HTTP/1.1" 200'
    assert load_config(config).redact(line) == '127.0.0.1:5 - "GET /reports/3/s/***/gx/index.html HTTP/1.1" 200'
