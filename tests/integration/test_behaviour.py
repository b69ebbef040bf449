"""The behaviour suite: the whole flow through the CLI, with store and catalogs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import NestedField, StringType
from typer.testing import CliRunner

from icebridge.cli import app
from icebridge.store import open_store
from icebridge.validation.structure import structure_differences
from tests.integration import estate

SOURCES = ["shop.events", "shop.customers", "shop.regions", "odd-ns.order events", "shop.empty"]


@dataclass
class Estate:
    root: Path
    config: Path
    state_url: str
    foreign_props: dict[str, str]
    managed_props: dict[str, str]

    def foreign(self) -> Catalog:
        return estate.open_catalog("foreign", self.foreign_props)

    def managed(self) -> Catalog:
        return estate.open_catalog("managed", self.managed_props)

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "-c", str(self.config)])
        return result.exit_code, result.output

    def cli_json(self, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        code, out = self.cli(*args, "--json")
        return code, json.loads(out[out.index("{") :])

    def tasks(self) -> dict[str, object]:
        store = open_store(self.state_url)
        try:
            return {t.source: t for t in store.list_tasks()}
        finally:
            store.close()


def make_estate(tmp_path: Path, backend: dict[str, str], big_files: int = 0, **migrate: int) -> Estate:
    kind = backend["kind"]
    foreign = estate.catalog_props(kind, tmp_path, "foreign", backend["foreign"])
    managed = estate.catalog_props(kind, tmp_path, "managed", backend["managed"])
    estate.build(estate.open_catalog("foreign", foreign), big_files=big_files)
    config = estate.write_config(tmp_path, backend["state"], foreign, managed, **migrate)
    return Estate(tmp_path, config, backend["state"], foreign, managed)


def rows(table: Table, schema: Schema | None = None) -> list[dict]:  # type: ignore[type-arg]
    """Every row, in a canonical order and with one set of Arrow types, for row-for-row comparison."""
    data = table.scan().to_arrow()
    target = schema_to_pyarrow(schema or table.schema(), include_field_ids=False)
    data = (
        pa.Table.from_batches([b.cast(target) for b in data.to_batches()], schema=target)
        if data.num_rows
        else target.empty_table()
    )
    key = data.column_names[0]
    return data.sort_by(key).to_pylist()


def assert_same_table(source: Table, destination: Table) -> None:
    assert (
        structure_differences(
            source.schema(),
            source.spec(),
            source.sort_order(),
            destination.schema(),
            destination.spec(),
            destination.sort_order(),
        )
        == []
    )
    assert [f.field_id for f in destination.schema().fields] == [f.field_id for f in source.schema().fields]
    assert rows(destination, source.schema()) == rows(source)


# ------------------------------------------------------------------------------------------ happy path


def test_migrate_cutover_rollback_end_to_end(est: Estate) -> None:
    code, report = est.cli_json("migrate")
    assert code == 0, report
    assert {t["source"]: t["status"] for t in report["tables"]} == {f"foreign.{s}": "succeeded" for s in SOURCES}

    foreign, managed = est.foreign(), est.managed()
    before = {s: foreign.load_table(tuple(s.split(".", 1))) for s in SOURCES}
    for name, source in before.items():
        destination = managed.load_table(tuple(name.split(".", 1)))
        assert_same_table(source, destination)
        for snapshot in destination.metadata.snapshots:  # every commit names its checkpoint
            props = snapshot.summary.additional_properties  # type: ignore[union-attr]
            assert props["icebridge.task"] == f"foreign.{name}"
            assert int(props["icebridge.source-snapshot-id"]) == source.current_snapshot().snapshot_id  # type: ignore[union-attr]

    tasks = est.tasks()
    assert all(t.phase == "migrated" and t.status == "succeeded" for t in tasks.values())  # type: ignore[attr-defined]
    assert tasks["foreign.shop.events"].rows == len(rows(before["shop.events"]))  # type: ignore[attr-defined]

    # a second run finds everything done and commits nothing
    snapshots = {s: len(managed.load_table(tuple(s.split(".", 1))).metadata.snapshots) for s in SOURCES}
    code, again = est.cli_json("migrate")
    assert code == 0
    assert all(t["message"] == "already done" for t in again["tables"])
    assert snapshots == {s: len(managed.load_table(tuple(s.split(".", 1))).metadata.snapshots) for s in SOURCES}

    code, cut = est.cli_json("cutover")
    assert code == 0, cut
    assert foreign.list_tables("shop") == []
    for source in before.values():  # archived, never purged
        assert Path(source.metadata_location.removeprefix("file://")).exists()
        for task in source.scan().plan_files():
            assert Path(task.file.file_path.removeprefix("file://")).exists()

    code, status = est.cli_json("status")
    assert code == 0
    assert {t["phase"] for t in status["tables"]} == {"cut-over"}
    assert all(t["archived_metadata_location"] for t in status["tables"])

    code, back = est.cli_json("rollback")
    assert code == 0, back
    for name, source in before.items():
        restored = foreign.load_table(tuple(name.split(".", 1)))
        assert restored.metadata_location == source.metadata_location
        assert rows(restored) == rows(source)


def test_status_shows_every_table_and_run(est: Estate) -> None:
    assert est.cli("migrate")[0] == 0
    code, status = est.cli_json("status")
    assert code == 0
    assert [r["kind"] for r in status["runs"]] == ["migrate", "inventory"]
    by_source = {t["source"]: t for t in status["tables"]}
    assert set(by_source) == {f"foreign.{s}" for s in SOURCES}
    events = by_source["foreign.shop.events"]
    assert events["rows"] > 0 and events["bytes"] > 0 and events["duration_seconds"] is not None
    assert events["error"] is None
    code, text = est.cli("status")
    assert code == 0 and "foreign.shop.events" in text and "migrated" in text


def test_plan_is_a_dry_run(est: Estate) -> None:
    code, plan = est.cli_json("plan")
    assert code == 0
    assert {t["source"]: t["destination"] for t in plan["tables"]} == {f"foreign.{s}": f"managed.{s}" for s in SOURCES}
    strategies = {t["source"]: t["strategy"] for t in plan["tables"]}
    assert strategies.pop("foreign.shop.customers") == "rewrite"
    assert set(strategies.values()) == {"file-copy"}
    assert all(t["reason"] for t in plan["tables"])
    assert est.managed().list_namespaces() == []


def test_preflight_passes_on_a_healthy_estate(est: Estate) -> None:
    code, report = est.cli_json("preflight")
    assert code == 0, report
    assert report["blockers"] == 0
    assert est.managed().list_namespaces() == []  # the namespace probe cleaned up after itself


# ------------------------------------------------------------------------------------------ bad input


def test_source_dropped_between_plan_and_migrate(est: Estate) -> None:
    assert est.cli("plan")[0] == 0
    est.foreign().drop_table("shop.regions")
    code, report = est.cli_json("migrate")
    assert code == 1
    by_source = {t["source"]: t for t in report["tables"]}
    assert by_source["foreign.shop.regions"]["status"] == "failed"
    assert "does not exist" in by_source["foreign.shop.regions"]["message"]
    assert all(t["status"] == "succeeded" for s, t in by_source.items() if s != "foreign.shop.regions")
    task = est.tasks()["foreign.shop.regions"]
    assert task.status == "failed" and "does not exist" in task.error  # type: ignore[attr-defined]


def test_destination_exists_with_a_different_schema(est: Estate) -> None:
    managed = est.managed()
    managed.create_namespace("shop")
    other = managed.create_table("shop.customers", Schema(NestedField(1, "id", StringType(), required=False)))
    code, plan = est.cli_json("plan")
    assert code == 1
    blocked = {t["source"] for t in plan["tables"] if t["blocked"]}
    assert blocked == {"foreign.shop.customers"}
    code, report = est.cli_json("migrate")
    assert code == 1
    by_source = {t["source"]: t for t in report["tables"]}
    assert by_source["foreign.shop.customers"]["status"] == "failed"
    assert "different shape" in by_source["foreign.shop.customers"]["message"]
    assert sum(t["status"] == "succeeded" for t in report["tables"]) == len(SOURCES) - 1
    other.refresh()
    assert other.current_snapshot() is None  # untouched


def test_read_only_destination_warehouse(tmp_path: Path, backend: dict[str, str]) -> None:
    est = make_estate(tmp_path, backend)
    warehouse = tmp_path / "managed-warehouse"
    warehouse.mkdir(exist_ok=True)
    subprocess.run(["chattr", "+i", str(warehouse)], check=True)  # read-only even for root
    try:
        code, report = est.cli_json("preflight")
        assert code == 1
        codes = {(f["table"], f["code"]) for f in report["findings"] if f["severity"] == "blocker"}
        assert {c for _, c in codes} == {"storage-not-writable"}
        assert {t for t, _ in codes} == {f"foreign.{s}" for s in SOURCES}
        code, migrated = est.cli_json("migrate")
        assert code == 1
        assert all(t["status"] == "failed" for t in migrated["tables"])
        assert all("managed-warehouse" in t["message"] for t in migrated["tables"])
    finally:
        subprocess.run(["chattr", "-i", str(warehouse)], check=True)
    assert list(warehouse.iterdir()) == []


def test_corrupt_source_metadata(est: Estate) -> None:
    table = est.foreign().load_table("shop.customers")
    Path(table.metadata_location.removeprefix("file://")).write_text("{ not json")
    code, inventory = est.cli_json("inventory", "--refresh")
    assert code == 1
    assert [f["table"] for f in inventory["findings"]] == ["foreign.shop.customers"]
    code, report = est.cli_json("migrate")
    assert code == 1
    by_source = {t["source"]: t for t in report["tables"]}
    assert by_source["foreign.shop.customers"]["status"] == "failed"
    assert "metadata cannot be read" in by_source["foreign.shop.customers"]["message"]
    assert sum(t["status"] == "succeeded" for t in report["tables"]) == len(SOURCES) - 1


def test_mapping_that_matches_nothing(est: Estate) -> None:
    config = yaml.safe_load(est.config.read_text())
    config["mappings"].insert(0, {"source": "foreign.nosuch.*", "target": "managed.x"})
    assert config["mappings"][1]["source"] == "foreign.shop.customers"
    est.config.write_text(yaml.safe_dump(config))
    code, out = est.cli("migrate")
    assert code == 2
    assert "mappings[0].source" in out and "matches no table" in out
    assert est.managed().list_namespaces() == []
    assert est.tasks() == {}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["migrate"].update(concurency=2), "migrate.concurency: unknown key"),
        (
            lambda c: c["mappings"].append({"source": "foreign.*.*", "target": "lake.x"}),
            "unknown catalog 'lake'",
        ),
        (
            lambda c: c["mappings"].append({"source": "foreign.[a.*", "target": "managed.x"}),
            "mappings[2].source",
        ),
        (
            lambda c: c["catalogs"]["foreign"].update(uri="postgresql+psycopg2://nobody@127.0.0.1:1/x"),
            "catalogs.foreign",
        ),
    ],
)
def test_config_mistakes_exit_2_and_write_no_state(tmp_path: Path, edit, expected) -> None:  # type: ignore[no-untyped-def]
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    config = yaml.safe_load(est.config.read_text())
    edit(config)
    est.config.write_text(yaml.safe_dump(config))
    for command in ("inventory", "plan", "migrate", "cutover"):
        code, out = est.cli(command)
        assert code == 2, (command, out)
        assert str(est.config) in out.replace("\n", "") and expected in out.replace("\n", "")
    assert not (tmp_path / "state.db").exists()


def test_two_sources_onto_one_destination_is_a_plan_blocker(est: Estate) -> None:
    config = yaml.safe_load(est.config.read_text())
    config["mappings"].insert(0, {"source": "foreign.shop.e*", "target": "managed.flat", "rename": "same"})
    est.config.write_text(yaml.safe_dump(config))
    code, plan = est.cli_json("plan")
    assert code == 1
    blocked = {t["source"]: t for t in plan["tables"] if t["blocked"]}
    assert set(blocked) == {"foreign.shop.events", "foreign.shop.empty"}
    assert all("managed.flat.same" in f["message"] for t in blocked.values() for f in t["findings"])
    code, report = est.cli_json("migrate")
    assert code == 1
    assert {t["source"] for t in report["tables"] if t["status"] == "failed"} == set(blocked)
    assert not est.managed().table_exists("flat.same")


def test_cutover_syncs_a_source_that_moved_on(est: Estate) -> None:
    assert est.cli("migrate")[0] == 0
    source = est.foreign().load_table("shop.regions")
    source.append(estate.events_arrow(10_000, 5))
    moved = est.foreign().load_table("shop.regions")
    code, report = est.cli_json("cutover")
    assert code == 0, report
    by_source = {t["source"]: t for t in report["tables"]}
    synced = by_source["foreign.shop.regions"]
    assert synced["status"] == "succeeded"
    assert "1 commit(s) replayed" in synced["message"], synced
    assert not est.foreign().table_exists("shop.regions")  # archived after the final sync
    assert rows(est.managed().load_table("shop.regions"), moved.schema()) == rows(moved)
    assert all(t["status"] == "succeeded" for t in by_source.values())


def test_secrets_are_never_printed_or_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-Value-42"
    monkeypatch.setenv("ICEBRIDGE_TEST_SECRET", secret)
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    config = yaml.safe_load(est.config.read_text())
    config["catalogs"]["managed"]["s3.secret-access-key"] = "${ICEBRIDGE_TEST_SECRET}"
    est.config.write_text(yaml.safe_dump(config))
    outputs = [est.cli(command)[1] for command in ("inventory", "plan", "preflight", "migrate", "status")]
    assert all(secret not in out for out in outputs)
    assert secret.encode() not in (tmp_path / "state.db").read_bytes()
    # a password inside a catalog URL is hidden in the error that names the unreachable catalog
    config["catalogs"]["foreign"]["uri"] = f"postgresql+psycopg2://someone:{secret}@127.0.0.1:1/x"
    est.config.write_text(yaml.safe_dump(config))
    code, out = est.cli("plan")
    assert code == 2 and "catalogs.foreign" in out and secret not in out


def test_plan_shows_bytes_and_an_estimate_from_a_probe(est: Estate) -> None:
    code, plan = est.cli_json("plan")
    assert code == 0
    foreign = est.foreign()
    for table in plan["tables"]:
        source = foreign.load_table(tuple(table["source"].split(".", 1)[1].split(".", 1)))
        assert table["bytes_to_move"] == sum(t.file.file_size_in_bytes for t in source.scan().plan_files())
        assert table["estimate_seconds"] is not None and table["estimate_seconds"] >= 0
    assert plan["bytes_to_move"] == sum(t["bytes_to_move"] for t in plan["tables"])
    assert plan["estimate_seconds"] is not None
    assert set(plan["throughput"]) == {"file-copy", "rewrite"}
    assert all("probe" in rate["basis"] and rate["bytes_per_second"] > 0 for rate in plan["throughput"].values())


def test_validate_levels_and_reports(est: Estate) -> None:
    code, migrated = est.cli_json("migrate")
    assert code == 0
    assert Path(migrated["report"]).is_file()

    code, level1 = est.cli_json("validate", "--level", "1")
    assert code == 0
    assert all(t["message"] == "levels 1 passed" for t in level1["tables"])

    code, full = est.cli_json("validate")
    assert code == 0
    proved = {t["source"]: t["message"] for t in full["tables"]}
    assert proved["foreign.shop.customers"] == "levels 1, 2, 4 passed"  # rewritten: content digests
    assert proved["foreign.shop.events"] == "levels 1, 2, 3 passed"  # byte-copied: file identity
    html = Path(full["report"]).read_text()
    assert all(source in html for source in proved)
    code, status = est.cli_json("status")
    assert status["runs"][0]["report_path"] == full["report"]

    # one byte changed in a byte-copied file: validation fails, says where, and exits non-zero
    destination = est.managed().load_table("shop.events")
    victim = Path(next(iter(destination.scan().plan_files())).file.file_path.removeprefix("file://"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, broken = est.cli_json("validate")
    assert code == 1
    failed = {t["source"]: t["message"] for t in broken["tables"] if t["status"] == "failed"}
    assert list(failed) == ["foreign.shop.events"]
    assert "file-identity" in failed["foreign.shop.events"]
    assert "failed" in Path(broken["report"]).read_text()


def test_plan_sql_prints_a_spark_script_per_table(est: Estate) -> None:
    code, out = est.cli_json("plan", "--sql")
    assert code == 0
    scripts = out["scripts"]
    assert set(scripts) == {f"foreign.{s}" for s in SOURCES}
    events = est.foreign().load_table("shop.events")
    script = scripts["foreign.shop.events"]
    assert f"VERSION AS OF {events.current_snapshot().snapshot_id}" in script  # type: ignore[union-attr]
    assert "INSERT INTO `managed`.`shop`.`events`" in script
    assert "CREATE TABLE IF NOT EXISTS `managed`.`odd-ns`.`order events`" in scripts["foreign.odd-ns.order events"]
    assert est.managed().list_namespaces() == []  # printed, not run


def test_engine_chosen_per_run_over_the_rules(est: Estate) -> None:
    code, spark = est.cli_json("plan", "--engine", "spark")
    assert code == 0
    assert {t["strategy"] for t in spark["tables"]} == {"spark-sql"}
    assert all("--engine spark" in t["reason"] for t in spark["tables"])
    code, local = est.cli_json("plan", "--engine", "local")
    assert code == 0
    assert {t["source"]: t["strategy"] for t in local["tables"]}["foreign.shop.customers"] == "rewrite"
    code, out = est.cli("plan", "--engine", "teleport")
    assert code == 2 and "--engine 'teleport'" in out


def test_commands_with_nothing_to_do_do_not_look_like_success(est: Estate) -> None:
    for command, expected in (
        ("cutover", "run 'icebridge migrate' first"),
        ("validate", "run 'icebridge migrate' first"),
        ("rollback", "nothing left to roll back"),
    ):
        code, report = est.cli_json(command)
        assert code == 1, (command, report)
        assert expected in report["message"]
        assert report["tables"] == [], "no table row is invented for a command that found nothing"
        assert report["status"] == "failed"


def test_a_second_rollback_says_nothing_is_left_and_the_first_shows_what_it_restored(est: Estate) -> None:
    assert est.cli("migrate")[0] == 0
    assert est.cli("cutover", "--tables", "foreign.shop.events")[0] == 0
    code, first = est.cli_json("rollback")
    assert code == 0, first
    (restored,) = first["tables"]
    source = est.foreign().load_table("shop.events")
    assert restored["rows"] == len(rows(source)) and restored["bytes"] > 0
    assert source.metadata_location in restored["message"]
    code, second = est.cli_json("rollback")
    assert code == 1
    assert "nothing left to roll back" in second["message"] and second["tables"] == []


def test_a_table_name_with_a_dot_migrates_cuts_over_and_rolls_back(est: Estate) -> None:
    foreign = est.foreign()
    source = foreign.create_table(("shop", "daily.v2"), pa.schema([pa.field("id", pa.int64())]))
    source.append(pa.table({"id": pa.array(range(50), pa.int64())}))
    code, report = est.cli_json("migrate", "--tables", "*daily*")
    assert code == 0, report
    assert [(t["source"], t["status"]) for t in report["tables"]] == [("foreign.shop.`daily.v2`", "succeeded")]
    copied = est.managed().load_table(("shop", "daily.v2"))
    assert rows(copied) == rows(source)
    assert {s.summary.additional_properties["icebridge.task"] for s in copied.metadata.snapshots} == {  # type: ignore[union-attr]
        "foreign.shop.`daily.v2`"
    }
    code, cut = est.cli_json("cutover", "--tables", "*daily*")
    assert code == 0, cut
    assert ("shop", "daily.v2") not in foreign.list_tables("shop")
    code, back = est.cli_json("rollback", "--tables", "*daily*")
    assert code == 0, back
    assert foreign.load_table(("shop", "daily.v2")).metadata_location == source.metadata_location
