"""The behaviour suite's flow over real foreign catalogs: a REST catalog and Glue, each as source and as destination.

Every flow runs the CLI as a user does — ``migrate`` → ``validate`` → ``cutover`` → ``rollback`` — with the
SQL catalog on the other side, and checks what a user would: each destination holds exactly the source's
rows with the source's field ids, cut-over archives the foreign entry (files kept), rollback restores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.table import Table

from icebridge.catalogs import Catalogs
from icebridge.config import load_config
from icebridge.model import TableRef
from tests.catalogs.conftest import Glue, RestCatalogs
from tests.integration import estate
from tests.integration.test_behaviour import Estate, assert_same_table, rows

NESTED = ("shop", "eu", "returns")  # a table two namespace levels deep, where the catalogs allow it


@dataclass
class CatalogEstate(Estate):
    """The small estate with catalogs of any type (opened by PyIceberg's ``load_catalog``)."""

    def foreign(self) -> Catalog:
        return load_catalog("foreign", **self.foreign_props)

    def managed(self) -> Catalog:
        return load_catalog("managed", **self.managed_props)


def make(root: Path, foreign: dict[str, str], managed: dict[str, str], nested: bool = False) -> CatalogEstate:
    """Build the estate in the foreign catalog and write the icebridge.yaml mapping it onto the managed one."""
    source = load_catalog("foreign", **foreign)
    estate.build(source)
    if nested:
        source.create_namespace(NESTED[:2])
        returns = source.create_table(NESTED, estate.EVENTS_SCHEMA)
        returns.append(estate.events_arrow(0, 60))
    state = f"sqlite:///{root}/state.db"
    return CatalogEstate(root, estate.write_config(root, state, foreign, managed), state, foreign, managed)


def source_tables(est: CatalogEstate) -> dict[str, Table]:
    """Every table of the foreign catalog by ``TableRef`` text, through IceBridge's own listing."""
    catalogs = Catalogs(load_config(est.config))
    return {str(ref): catalogs.load_table(ref) for ref in catalogs.list_tables("foreign")}


def stored(table: Table, path: str) -> bool:
    return bool(table.io.new_input(path).exists())


def check_flow(est: CatalogEstate, expected_tables: int) -> None:
    before = source_tables(est)
    assert len(before) == expected_tables, sorted(before)

    code, report = est.cli_json("migrate")
    assert code == 0, report
    assert {t["source"]: t["status"] for t in report["tables"]} == dict.fromkeys(before, "succeeded")
    managed = est.managed()
    for name, source in before.items():
        destination = managed.load_table(TableRef.parse(name).identifier)
        assert_same_table(source, destination)  # same field ids, spec, sort order, and exactly the same rows
        for snapshot in destination.metadata.snapshots:
            assert snapshot.summary.additional_properties["icebridge.task"] == name  # type: ignore[union-attr]

    code, validated = est.cli_json("validate")
    assert code == 0, validated
    assert all(t["status"] == "succeeded" and "passed" in t["message"] for t in validated["tables"]), validated

    code, cut = est.cli_json("cutover")
    assert code == 0, cut
    assert source_tables(est) == {}  # every foreign entry archived ...
    for source in before.values():  # ... never purged
        assert stored(source, source.metadata_location)
        assert all(stored(source, task.file.file_path) for task in source.scan().plan_files())
    code, status = est.cli_json("status")
    assert {t["phase"] for t in status["tables"]} == {"cut-over"}
    assert all(t["archived_metadata_location"] for t in status["tables"])

    code, back = est.cli_json("rollback")
    assert code == 0, back
    restored = source_tables(est)
    assert set(restored) == set(before)
    for name, source in before.items():
        assert restored[name].metadata_location == source.metadata_location
        assert rows(restored[name]) == rows(source)


def test_rest_catalog_as_source(tmp_path: Path, rest: RestCatalogs) -> None:
    foreign = rest.new("foreign", auth="oauth")
    managed = estate.catalog_props("sqlite", tmp_path, "managed")
    check_flow(make(tmp_path, foreign, managed, nested=True), expected_tables=6)


def test_rest_catalog_as_destination(tmp_path: Path, rest: RestCatalogs) -> None:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = rest.new("managed")
    est = make(tmp_path, foreign, managed, nested=True)
    code, preflight = est.cli_json("preflight")
    assert code == 0 and preflight["blockers"] == 0, preflight
    # the server picks the folders (its warehouse is a catalog name, no place to probe)
    assert {f["code"] for f in preflight["findings"] if f["severity"] != "info"} == set(), preflight
    assert "storage-chosen-by-server" in {f["code"] for f in preflight["findings"]}
    assert est.managed().list_namespaces() == []  # the probes left nothing behind
    code, plan = est.cli_json("plan")
    assert code == 0 and not any(t["blocked"] for t in plan["tables"]), plan
    check_flow(est, expected_tables=6)
    # the server chose the locations, under its warehouse for the catalog
    location = est.managed().load_table(("shop", "events")).metadata.location
    assert location == f"file:{rest.root}/{managed['warehouse']}/shop/events"


def test_glue_as_source(tmp_path: Path, glue: Glue) -> None:
    foreign = glue.props(glue.bucket("glue-source"))
    managed = estate.catalog_props("sqlite", tmp_path, "managed")
    check_flow(make(tmp_path, foreign, managed), expected_tables=5)


def test_glue_as_destination(tmp_path: Path, glue: Glue) -> None:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = glue.props(glue.bucket("glue-destination"))
    est = make(tmp_path, foreign, managed)
    check_flow(est, expected_tables=5)
    location = est.managed().load_table(("shop", "events")).metadata.location
    assert location == "s3://glue-destination/warehouse/shop.db/events"


def test_unity_managed_destination_keeps_field_and_spec_ids_without_register(
    tmp_path: Path, rest: RestCatalogs
) -> None:
    """Unity Catalog registers no metadata file: scaffold creates each table by one commit carrying its shape."""
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = rest.new("main", flavor="unity")
    est = make(tmp_path, foreign, managed)
    catalogs = Catalogs(load_config(est.config))
    assert not catalogs.supports_register("managed")
    code, report = est.cli_json("migrate")
    assert code == 0, report
    source, destination = est.foreign(), est.managed()
    for name in ("shop.customers", "shop.regions", "odd-ns.order events"):
        ident = tuple(name.split(".", 1))
        src, dst = source.load_table(ident), destination.load_table(ident)
        assert_same_table(src, dst)
        assert {s.spec_id: s.fields for s in dst.specs().values()} == {
            s.spec_id: s.fields for s in src.specs().values()
        }
    # the evolved table keeps the gap its dropped column left in the field ids
    assert [f.field_id for f in destination.load_table(("shop", "customers")).schema().fields] == [1, 2, 3, 4, 5, 6, 8]
    code, validated = est.cli_json("validate")
    assert code == 0, validated


def test_a_read_only_unity_foreign_table_migrates_and_its_cutover_is_refused(
    tmp_path: Path, rest: RestCatalogs
) -> None:
    """A foreign table federated into Unity Catalog reads and copies; dropping its entry is refused, clearly."""
    owner = rest.owner("federated")  # the system the foreign catalog is federated from
    estate.build(owner)
    foreign = rest.new("federated", flavor="unity", read_only=True)
    managed = estate.catalog_props("sqlite", tmp_path, "managed")
    state = f"sqlite:///{tmp_path}/state.db"
    est = CatalogEstate(tmp_path, estate.write_config(tmp_path, state, foreign, managed), state, foreign, managed)
    before = source_tables(est)

    code, report = est.cli_json("migrate")
    assert code == 0, report
    for name, source in before.items():
        assert_same_table(source, est.managed().load_table(TableRef.parse(name).identifier))

    # a write through Unity Catalog is refused, with the server's reason
    events = est.foreign().load_table(("shop", "events"))
    try:
        events.append(estate.events_arrow(1000, 5))
    except Exception as exc:
        assert type(exc).__name__ == "ForbiddenError"
        assert "foreign table" in str(exc) and "read-only" in str(exc)
    else:
        raise AssertionError("an append to a read-only foreign table was accepted")

    code, output = est.cli("cutover", "--tables", "foreign.shop.events")
    assert code == 1
    assert "Traceback" not in output
    code, cut = est.cli_json("cutover", "--tables", "foreign.shop.events")
    assert code == 1
    [outcome] = cut["tables"]
    assert outcome["status"] == "failed"
    assert "refuses to drop the entry" in outcome["message"]
    assert "point catalogs.foreign at that catalog" in outcome["message"]
    # nothing changed: the entry is where it was, unchanged, and nothing is recorded as archived
    assert (
        source_tables(est)["foreign.shop.events"].metadata_location == before["foreign.shop.events"].metadata_location
    )
    code, status = est.cli_json("status")
    assert not any(t["archived_metadata_location"] for t in status["tables"])
    # the steps the cut-over did before the refused archive (freeze, swap) are undone; then nothing is left
    code, back = est.cli_json("rollback")
    assert code == 0, back
    [undone] = back["tables"]
    assert undone["source"] == "foreign.shop.events" and undone["status"] == "succeeded"
    code, back = est.cli_json("rollback")
    assert code == 1 and "nothing left to roll back" in back["message"] and back["tables"] == []
    assert rows(owner.load_table(("shop", "events"))) == rows(before["foreign.shop.events"])
