"""Real foreign catalogs for the tests: IceBridge's own Iceberg REST catalog server, and Glue on moto.

``rest_server`` (session) is one server process (``scripts/build-rest-catalog.sh`` builds it) serving
both the Iceberg REST contract at ``/v1`` and Unity Catalog's at ``/api/2.1/unity-catalog/iceberg-rest``,
every catalog of it a JdbcCatalog on one fresh PostgreSQL database. ``rest`` (per test) gives a test
catalogs of its own on that server and removes them afterwards::

    def test_x(rest: RestCatalogs) -> None:
        props = rest.new("src")                         # Iceberg REST, bearer token
        props = rest.new("src", auth="oauth")           # OAuth2 client credentials instead
        props = rest.new("uc", flavor="unity")          # Unity Catalog's conventions (managed)
        owner = rest.owner("fed")                       # a SQL catalog owning the tables of ...
        props = rest.new("fed", flavor="unity", read_only=True)  # ... this foreign, read-only UC catalog
        catalog = load_catalog("x", **props)            # PyIceberg's RestCatalog

``glue`` (per test) is a moto server of its own (Glue and S3 on one port); ``glue.props(bucket)`` gives
PyIceberg Glue catalog properties with the data on S3.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT, fresh_pg_database
from tests.integration.test_s3 import S3_KEYS, moto_server

BUILD_REST_CATALOG = REPO_ROOT / "scripts" / "build-rest-catalog.sh"
UNITY_PATH = "/api/2.1/unity-catalog/iceberg-rest"
START_SECONDS = 90  # a JVM on a busy two-core machine


def build_env() -> dict[str, str]:
    """The environment the build script needs: VENV is the virtualenv running the tests (pyspark's jars)."""
    venv = Path(sys.executable).parent.parent  # not resolved: a venv's python is a link out of it
    return {**os.environ, "VENV": str(venv)}


def build_rest_catalog() -> Path:
    """Build the server (quick when up to date) and return its launcher; fail with the script's output."""
    result = subprocess.run(
        ["bash", str(BUILD_REST_CATALOG)], capture_output=True, text=True, timeout=600, check=False, env=build_env()
    )
    if result.returncode != 0:
        pytest.fail(
            f"{BUILD_REST_CATALOG} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class RestServer:
    """A running REST catalog server: its base URL, its credentials and the database behind its catalogs."""

    url: str
    token: str
    client_id: str
    client_secret: str
    db_url: str
    log: Path

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = ""
    ) -> tuple[int, Any]:
        """One JSON request to the server (with the server's token unless ``token`` is given, None for none):
        its status and its decoded body."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                status, text = exc.code, exc.read().decode()
        return status, json.loads(text) if text else None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request that must succeed; its decoded body."""
        status, answer = self.request(method, path, body)
        assert status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def add_catalog(
        self,
        name: str,
        location: str,
        flavor: str = "iceberg",
        read_only: bool = False,
        vended: dict[str, str] | None = None,
    ) -> None:
        spec = {"name": name, "location": location, "flavor": flavor, "read-only": read_only}
        self.call("POST", "/manage/catalogs", {**spec, "vended-credentials": vended or {}})

    def remove_catalog(self, name: str) -> None:
        self.call("DELETE", f"/manage/catalogs/{name}")

    def base(self, flavor: str) -> str:
        return self.url + (UNITY_PATH if flavor == "unity" else "")

    def props(self, name: str, flavor: str = "iceberg", auth: str = "token") -> dict[str, str]:
        """PyIceberg (and icebridge.yaml) properties of catalog ``name``: the warehouse names it."""
        base = self.base(flavor)
        props = {"type": "rest", "uri": base, "warehouse": name}
        if auth == "oauth":
            credential = {"credential": f"{self.client_id}:{self.client_secret}"}
            return {**props, **credential, "oauth2-server-uri": f"{base}/v1/oauth/tokens"}
        return {**props, "token": self.token}


@pytest.fixture(scope="session")
def rest_server(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    """The REST catalog server on a free port, over a fresh PostgreSQL database; stopped at session end."""
    launcher = build_rest_catalog()
    db_url = fresh_pg_database(pg_server, "ib_rest_")
    url = make_url(db_url)
    jdbc = f"jdbc:postgresql://{url.host}:{url.port}/{url.database}"
    token, client_id, client_secret = secrets.token_hex(16), "icebridge-tests", secrets.token_hex(16)
    log = tmp_path_factory.mktemp("rest-catalog") / "server.log"
    args = [str(launcher), "--jdbc-uri", jdbc, "--jdbc-user", str(url.username), "--port", "0"]
    args += ["--token", token, "--client", f"{client_id}:{client_secret}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = _wait_ready(proc, log)
        yield RestServer(base, token, client_id, client_secret, db_url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        if proc.poll() is not None:
            pytest.fail(f"the REST catalog server exited with {proc.returncode}:\n{log.read_text()}", pytrace=False)
        time.sleep(0.1)
    pytest.fail(f"the REST catalog server did not start within {START_SECONDS} s:\n{log.read_text()}", pytrace=False)


@dataclass
class RestCatalogs:
    """One test's catalogs on the session's server, each under a unique name, removed after the test."""

    server: RestServer
    root: Path
    names: list[str] = field(default_factory=list)

    def new(
        self,
        label: str,
        *,
        flavor: str = "iceberg",
        read_only: bool = False,
        vended: dict[str, str] | None = None,
        auth: str = "token",
    ) -> dict[str, str]:
        """A new, empty catalog (or, read-only, one serving what its owner wrote); its client properties."""
        name = self.name(label)
        location = f"file:{self.root}/{name}"
        self.server.add_catalog(name, location, flavor=flavor, read_only=read_only, vended=vended)
        self.names.append(name)
        return self.server.props(name, flavor=flavor, auth=auth)

    def name(self, label: str) -> str:
        """The unique name ``new(label)`` gives (the same for the same label within a test)."""
        return f"{label}_{uuid.uuid5(uuid.NAMESPACE_URL, str(self.root)).hex[:10]}"

    def owner(self, label: str) -> SqlCatalog:
        """The SQL catalog that writes the tables the server's catalog ``label`` serves (a federated catalog's
        owning system): same database, same catalog name, its own warehouse."""
        return SqlCatalog(
            self.name(label), uri=self.server.db_url, warehouse=f"file://{self.root}/{self.name(label)}-owner"
        )


@pytest.fixture
def rest(rest_server: RestServer, tmp_path: Path) -> Iterator[RestCatalogs]:
    """Catalogs of this test's own on the REST catalog server."""
    catalogs = RestCatalogs(rest_server, tmp_path / "rest")
    (tmp_path / "rest").mkdir()
    try:
        yield catalogs
    finally:
        for name in catalogs.names:
            rest_server.request("DELETE", f"/manage/catalogs/{name}")


@dataclass(frozen=True)
class Glue:
    """A moto server standing in for AWS Glue and S3."""

    endpoint: str

    def bucket(self, name: str) -> str:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **_aws_keys())
        client.create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> list[str]:
        """The keys stored in ``bucket``."""
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **_aws_keys())
        return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def props(self, bucket: str) -> dict[str, str]:
        """PyIceberg Glue catalog properties: tables in Glue, their files under ``s3://bucket/warehouse``."""
        return {
            "type": "glue",
            "glue.endpoint": self.endpoint,
            "glue.region": "us-east-1",
            "glue.access-key-id": "testing",
            "glue.secret-access-key": "testing",
            "warehouse": f"s3://{bucket}/warehouse",
            "s3.endpoint": self.endpoint,
            **S3_KEYS,
        }


def _aws_keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def glue(tmp_path: Path) -> Iterator[Glue]:
    """A moto server of this test's own (Glue databases are shared by everything on one server)."""
    with moto_server(tmp_path) as endpoint:
        yield Glue(endpoint)
