"""The REST catalog server the tests start: the contracts it serves, seen through PyIceberg's RestCatalog."""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import (
    BadRequestError,
    CommitFailedException,
    ForbiddenError,
    NoSuchTableError,
    OAuthError,
    RESTError,
    UnauthorizedError,
)
from pyiceberg.table.update import AssertRefSnapshotId, SetPropertiesUpdate

from icebridge.catalogs import Catalogs
from icebridge.config import load_config
from icebridge.model import TableRef
from tests.catalogs.conftest import BUILD_REST_CATALOG, RestCatalogs, RestServer, build_env, build_rest_catalog
from tests.integration import estate
from tests.integration.test_behaviour import rows

ONE_COLUMN = pa.schema([pa.field("id", pa.int64())])


def ids(values: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64())})


def status_of(server: RestServer, path: str) -> int:
    return server.request("GET", path)[0]


def test_the_prefix_comes_from_the_config_endpoint(rest: RestCatalogs) -> None:
    props = rest.new("prefixed")
    catalog = load_catalog("c", **props)
    assert catalog.properties["prefix"] == props["warehouse"]
    catalog.create_namespace("shop")
    table = catalog.create_table(("shop", "t"), ONE_COLUMN)
    table.append(ids([1, 2]))
    server = rest.server
    assert server.call("GET", f"/v1/{props['warehouse']}/namespaces")["namespaces"] == [["shop"]]
    assert status_of(server, "/v1/namespaces") == 404  # nothing is served without the prefix
    assert status_of(server, "/v1/no-such-catalog/namespaces") == 404
    with pytest.raises(RESTError, match="Catalog nope does not exist"):
        load_catalog("c", **{**props, "warehouse": "nope"})
    with pytest.raises(BadRequestError, match="warehouse"):
        load_catalog("c", **{k: v for k, v in props.items() if k != "warehouse"})


def test_bearer_tokens_are_required(rest: RestCatalogs) -> None:
    props = rest.new("guarded")
    with pytest.raises(UnauthorizedError, match="valid bearer token"):
        load_catalog("c", **{**props, "token": "not-the-token"})
    status, answer = rest.server.request("GET", f"/v1/config?warehouse={props['warehouse']}", token=None)
    assert status == 401 and answer["error"]["type"] == "NotAuthorizedException"
    assert load_catalog("c", **props).list_namespaces() == []


# PyIceberg leaves the HTTP session open when its token request is refused; collected here, not in a later test
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_oauth2_client_credentials(rest: RestCatalogs) -> None:
    props = rest.new("oauth", auth="oauth")
    catalog = load_catalog("c", **props)
    catalog.create_namespace("ns")
    assert catalog.list_namespaces() == [("ns",)]
    client_id = rest.server.client_id
    with pytest.raises(OAuthError, match="invalid_client"):
        load_catalog("c", **{**props, "credential": f"{client_id}:wrong-secret"})
    with pytest.raises(OAuthError, match="invalid_client"):
        load_catalog("c", **{**props, "credential": f"someone-else:{rest.server.client_secret}"})
    gc.collect()


def test_multi_level_namespaces(tmp_path: Path, rest: RestCatalogs) -> None:
    props = rest.new("deep")
    catalog = load_catalog("c", **props)
    for depth in range(1, 4):
        namespace = ("a", "b", "c")[:depth]
        catalog.create_namespace(namespace)
        catalog.create_table((*namespace, f"t{depth}"), ONE_COLUMN).append(ids([depth]))
    assert catalog.list_namespaces() == [("a",)]
    assert catalog.list_namespaces(("a",)) == [("a", "b")]
    assert catalog.list_namespaces(("a", "b")) == [("a", "b", "c")]
    assert catalog.list_tables(("a", "b", "c")) == [("a", "b", "c", "t3")]
    assert rows(catalog.load_table(("a", "b", "c", "t3"))) == [{"id": 3}]
    # IceBridge's listing walks them all
    config = estate.write_config(tmp_path, f"sqlite:///{tmp_path}/state.db", props, props)
    refs = list(Catalogs(load_config(config)).list_tables("foreign"))
    assert [str(r) for r in refs] == ["foreign.a.t1", "foreign.a.b.t2", "foreign.a.b.c.t3"]
    assert refs[-1] == TableRef("foreign", ("a", "b", "c"), "t3")


def test_commits_conflict_and_drops_purge_only_when_asked(rest: RestCatalogs) -> None:
    catalog = load_catalog("c", **rest.new("commits"))
    catalog.create_namespace("ns")
    catalog.create_table(("ns", "t"), ONE_COLUMN)
    first, second = catalog.load_table(("ns", "t")), catalog.load_table(("ns", "t"))
    first.append(ids([1]))
    stale = (AssertRefSnapshotId(ref="main", snapshot_id=None),)  # second still sees no snapshot
    with pytest.raises(CommitFailedException, match="main"):
        catalog.commit_table(second, stale, (SetPropertiesUpdate(updates={"k": "v"}),))
    second.append(ids([2]))  # PyIceberg refreshes and retries on the conflict: no write is lost
    table = catalog.load_table(("ns", "t"))
    assert rows(table) == [{"id": 1}, {"id": 2}]
    kept = table.metadata_location
    catalog.drop_table(("ns", "t"))
    assert Path(kept.removeprefix("file:")).exists()  # a drop keeps the files ...
    catalog.register_table(("ns", "t"), kept)  # ... so the entry can be registered again
    data = [Path(t.file.file_path.removeprefix("file:")) for t in catalog.load_table(("ns", "t")).scan().plan_files()]
    catalog.purge_table(("ns", "t"))
    assert not Path(kept.removeprefix("file:")).exists() and not any(p.exists() for p in data)
    with pytest.raises(NoSuchTableError):
        catalog.load_table(("ns", "t"))


def test_views_are_served(rest: RestCatalogs) -> None:
    catalog = load_catalog("c", **rest.new("views"))
    catalog.create_namespace("ns")
    assert catalog.list_views("ns") == []
    assert not catalog.view_exists(("ns", "v"))


def test_unity_catalog_contract(rest: RestCatalogs) -> None:
    props = rest.new("main", flavor="unity")
    assert props["uri"].endswith("/api/2.1/unity-catalog/iceberg-rest")
    with pytest.raises(BadRequestError, match="Unity Catalog needs the warehouse property"):
        load_catalog("c", **{k: v for k, v in props.items() if k != "warehouse"})
    catalog = load_catalog("c", **props)
    catalog.create_namespace("sales")
    with pytest.raises(BadRequestError, match="namespaces are schemas"):
        catalog.create_namespace(("sales", "eu"))
    table = catalog.create_table(("sales", "orders"), ONE_COLUMN)
    table.append(ids([1, 2]))
    assert rows(catalog.load_table(("sales", "orders"))) == [{"id": 1}, {"id": 2}]
    with pytest.raises(NotImplementedError, match="register"):
        catalog.register_table(("sales", "copy"), table.metadata_location)
    # asked anyway, the server refuses it too; and an Iceberg-REST catalog is not served at UC's path
    base = f"/api/2.1/unity-catalog/iceberg-rest/v1/{props['warehouse']}"
    status, answer = rest.server.request("POST", f"{base}/namespaces/sales/register", {"name": "x"})
    assert status == 406 and "does not support registerTable" in answer["error"]["message"]
    iceberg = rest.new("plain")
    assert status_of(rest.server, f"/api/2.1/unity-catalog/iceberg-rest/v1/{iceberg['warehouse']}/namespaces") == 404


def test_unity_foreign_catalog_is_read_only_and_vends_credentials(rest: RestCatalogs) -> None:
    owner = rest.owner("fed")
    owner.create_namespace("sales")
    written = owner.create_table(("sales", "orders"), ONE_COLUMN)
    written.append(ids([1, 2, 3]))
    vended = {"s3.session-token": "vended-for-tests"}
    catalog = load_catalog("c", **rest.new("fed", flavor="unity", read_only=True, vended=vended))
    table = catalog.load_table(("sales", "orders"))
    assert rows(table) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert table.io.properties["s3.session-token"] == "vended-for-tests"  # the table's FileIO got them
    assert catalog.load_credentials(("sales", "orders"), table.metadata.location) == vended  # type: ignore[attr-defined]

    with pytest.raises(ForbiddenError, match=r"sales\.orders is a foreign table: Unity Catalog serves it read-only"):
        table.append(ids([4]))
    with pytest.raises(ForbiddenError, match="read-only"):
        catalog.drop_table(("sales", "orders"))
    with pytest.raises(ForbiddenError, match="foreign catalog"):
        catalog.create_namespace("more")
    assert catalog.load_table(("sales", "orders")).metadata_location == written.metadata_location

    written.append(ids([4]))  # federation is live: what the owner commits is served at once
    assert len(rows(catalog.load_table(("sales", "orders")))) == 4


def test_build_is_quick_when_up_to_date() -> None:
    launcher = build_rest_catalog()
    classes = launcher.parent.parent / "classes"
    stamp = {p: p.stat().st_mtime_ns for p in classes.rglob("*.class")}
    assert stamp, f"no classes under {classes}"
    again = subprocess.run(
        ["bash", str(BUILD_REST_CATALOG)], capture_output=True, text=True, check=True, timeout=120, env=build_env()
    )
    assert again.stdout.strip().splitlines()[-1] == str(launcher)
    assert "compiling" not in again.stderr
    assert {p: p.stat().st_mtime_ns for p in classes.rglob("*.class")} == stamp


def test_bad_command_line_exits_2_and_says_why() -> None:
    launcher = str(build_rest_catalog())
    missing = subprocess.run([launcher, "--port", "0"], capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2
    assert "--jdbc-uri is required" in missing.stderr and "usage: rest-catalog" in missing.stderr
    wrong = subprocess.run(
        [launcher, "--jdbc-uri", "jdbc:x", "--client", "no-secret"], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 2 and "--client no-secret: expected ID:SECRET" in wrong.stderr
    assert "Exception" not in missing.stderr + wrong.stderr
