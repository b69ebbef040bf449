"""The ``register`` strategy: the destination's own metadata over the source's files, no data byte copied."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from pyiceberg.manifest import DataFileContent

from icebridge.engines import CatalogAccess
from icebridge.engines.register import RegisterEngine, check_can_register
from icebridge.errors import LocationOverlapError, RegisterUnsupportedError
from icebridge.ledger import FileLedger
from icebridge.locations import Place
from icebridge.model import PlanItem, Severity, TableRef
from icebridge.phases.copy import referenced_files
from icebridge.store import Store, open_store
from tests.integration.test_behaviour import Estate, assert_same_table, make_estate, rows

TABLES = ["shop.events", "shop.customers", "shop.regions", "shop.empty"]


@pytest.fixture
def reg(tmp_path: Path, backend: dict[str, str]) -> Estate:
    """The behaviour suite's estate, every table mapped with ``strategy: register``."""
    est = make_estate(tmp_path, backend)
    config = yaml.safe_load(est.config.read_text())
    config["mappings"] = [{"source": "foreign.shop.*", "target": "managed.shop", "strategy": "register"}]
    est.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return est


def files_under(folder: str) -> set[str]:
    root = Path(folder.removeprefix("file://").removeprefix("file:"))
    return {str(p) for p in root.rglob("*") if p.is_file()}


def all_files(table: object) -> list[tuple[str, DataFileContent]]:
    out = []
    for snapshot in table.metadata.snapshots[-1:]:  # type: ignore[attr-defined]
        for manifest in snapshot.manifests(table.io):  # type: ignore[attr-defined]
            for entry in manifest.fetch_manifest_entry(table.io):  # type: ignore[attr-defined]
                out.append((entry.data_file.file_path, entry.data_file.content))
    return sorted(out)


def test_register_references_the_source_files_validates_and_rolls_back(
    reg: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[str] = []
    record_written = Store.record_written

    def spy(self: Store, task_id: int, run_id: int | None, owner: str, paths: Iterable[str]) -> None:
        paths = list(paths)
        recorded.extend(paths)
        record_written(self, task_id, run_id, owner, paths)

    monkeypatch.setattr(Store, "record_written", spy)
    code, plan = reg.cli_json("plan")
    assert code == 0, plan
    for table in plan["tables"]:
        assert table["strategy"] == "register" and table["bytes_to_move"] == 0
        shared = [f for f in table["findings"] if f["code"] == "register-shares-files"]
        assert shared and shared[0]["severity"] == "warning"
        assert "files are shared" in shared[0]["message"] and "purge" in shared[0]["message"]
    code, preflight = reg.cli_json("preflight")
    assert code == 0 and "register-shares-files" in {f["code"] for f in preflight["findings"]}

    foreign = reg.foreign()
    locations = {name: foreign.load_table(name).metadata.location for name in TABLES}
    source_files = {name: files_under(locations[name]) for name in TABLES}
    source_rows = {name: rows(foreign.load_table(name)) for name in TABLES}
    code, report = reg.cli_json("migrate")
    assert code == 0, report
    assert {t["source"]: t["status"] for t in report["tables"]} == {f"foreign.{t}": "succeeded" for t in TABLES}

    managed = reg.managed()
    for name in TABLES:
        source, destination = foreign.load_table(name), managed.load_table(name)
        assert_same_table(source, destination)
        assert rows(destination) == rows(source)  # read back through PyIceberg
        # the destination references exactly the source's live files, at their own paths
        if source.current_snapshot() is not None:
            assert all_files(destination) == all_files(source)
        # nothing but metadata was written, all of it under the destination's own location
        written = files_under(destination.metadata.location)
        assert written and all("/metadata/" in path for path in written), written
        assert not any(path.endswith(".parquet") for path in written)
        # and not one source file was added, changed or removed
        assert files_under(source.metadata.location) == source_files[name]

    # the ledger recorded only what IceBridge wrote: each destination's metadata, manifests, manifest lists
    destinations = [managed.load_table(name).metadata.location.removeprefix("file://") for name in TABLES]
    assert recorded and all(
        any(p.removeprefix("file://").startswith(f"{where}/metadata/") for where in destinations) for p in recorded
    ), recorded

    code, checked = reg.cli_json("validate", "--level", "3")
    assert code == 0, checked
    for table in checked["tables"]:
        assert table["status"] == "succeeded", table

    code, cut = reg.cli_json("cutover")
    assert code == 0, cut
    assert foreign.list_tables("shop") == []
    for name in TABLES:  # archived, never purged: the shared files are all there, the destination reads them
        assert files_under(locations[name]) == source_files[name]
        assert rows(managed.load_table(name)) == source_rows[name]

    code, back = reg.cli_json("rollback")
    assert code == 0, back
    for name in TABLES:
        restored, destination = foreign.load_table(name), managed.load_table(name)
        assert rows(restored) == rows(destination) == source_rows[name]
        assert files_under(restored.metadata.location) == source_files[name]  # nothing deleted or dropped


class _NoRegister:
    """A catalog access whose destination cannot register (as Unity Catalog's managed tables)."""

    def get(self, name: str) -> object:
        raise AssertionError("nothing is loaded to decide")

    def planned_location(self, ref: TableRef) -> str | None:
        return None

    def places_tables(self, name: str) -> bool:
        return False

    def supports_register(self, name: str) -> bool:
        return name != "uc"


def test_a_destination_that_cannot_register_is_refused(tmp_path: Path) -> None:
    catalogs: CatalogAccess = _NoRegister()  # type: ignore[assignment]
    engine = RegisterEngine.__new__(RegisterEngine)
    item = PlanItem(TableRef("foreign", ("s",), "t"), TableRef("uc", ("s",), "t"), "register", "forced")
    [finding] = engine.destination_findings(item, catalogs)
    assert (finding.severity, finding.code) == (Severity.BLOCKER, "register-unsupported")
    assert "'uc' cannot register a metadata file" in finding.message and "file-copy" in finding.fix
    ok = PlanItem(TableRef("foreign", ("s",), "t"), TableRef("managed", ("s",), "t"), "register", "forced")
    assert engine.destination_findings(ok, catalogs) == []
    with pytest.raises(RegisterUnsupportedError, match="uc.s.t: catalog 'uc' cannot register"):
        check_can_register(catalogs, TableRef("uc", ("s",), "t"))


def test_cleanup_after_register_deletes_only_files_icebridge_wrote(reg: Estate) -> None:
    assert reg.cli("migrate", "--tables", "foreign.shop.events")[0] == 0
    source, destination = reg.foreign().load_table("shop.events"), reg.managed().load_table("shop.events")
    shared = [path for path, _content in all_files(destination)]
    before = files_under(source.metadata.location)
    stray = f"{destination.metadata.location}/metadata/stray-from-an-interrupted-attempt.avro"
    store = open_store(reg.state_url)
    try:
        task = store.get_task("foreign.shop.events")
        assert task is not None
        ledger = FileLedger(
            store, task.id, None, "test", [Place(source.metadata.location, "source foreign.shop.events")]
        )
        ledger.record([stray])
        Path(stray.removeprefix("file://")).write_bytes(b"left by an attempt that did not commit")
        with pytest.raises(LocationOverlapError):
            ledger.record([shared[0]])  # a source file can never enter the ledger
        with pytest.raises(LocationOverlapError):
            ledger.check_delete(shared[0])
        removed = ledger.sweep(destination, referenced_files(destination))
    finally:
        store.close()
    assert removed == [stray] and not Path(stray.removeprefix("file://")).exists()
    assert files_under(source.metadata.location) == before  # every shared file is still there
    assert rows(reg.managed().load_table("shop.events")) == rows(source)
