"""A destination that overlaps a source is refused before anything is written; a cleanup deletes only its own files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.test_behaviour import SOURCES, Estate, make_estate, rows


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def point_managed_warehouse_at(est: Estate, folder: str) -> None:
    config = yaml.safe_load(est.config.read_text())
    config["catalogs"]["managed"]["warehouse"] = folder
    est.config.write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("where", ["same folder", "inside the source's", "file: spelling"])
def test_a_destination_warehouse_overlapping_the_source_is_a_blocker_and_nothing_is_touched(
    est: Estate, where: str
) -> None:
    source_warehouse = est.root / "foreign-warehouse"
    folder = {
        "same folder": f"file://{source_warehouse}",
        "inside the source's": f"file://{source_warehouse}/managed",
        "file: spelling": f"file:{source_warehouse}/",
    }[where]
    point_managed_warehouse_at(est, folder)
    before = files_under(source_warehouse)
    foreign = est.foreign()
    source_rows = {s: rows(foreign.load_table(tuple(s.split(".", 1)))) for s in SOURCES}

    for command in ("plan", "preflight"):
        code, report = est.cli_json(command)
        assert code == 1, (command, report)
        findings = (
            report["findings"] if command == "preflight" else [f for t in report["tables"] for f in t["findings"]]
        )
        overlaps = {f["table"] for f in findings if f["code"] == "location-overlap" and f["severity"] == "blocker"}
        assert overlaps == {f"foreign.{s}" for s in SOURCES}, command
        message = next(f["message"] for f in findings if f["code"] == "location-overlap")
        assert "overlaps" in message and str(source_warehouse) in message

    code, migrated = est.cli_json("migrate")
    assert code == 1
    assert all(t["status"] == "failed" and "overlaps" in t["message"] for t in migrated["tables"])
    assert est.managed().list_namespaces() == []
    assert files_under(source_warehouse) == before, "every source file is where it was, byte for byte"
    foreign = est.foreign()
    assert {s: rows(foreign.load_table(tuple(s.split(".", 1)))) for s in SOURCES} == source_rows


def test_the_cleanup_leaves_files_it_did_not_write(est: Estate) -> None:
    """Files IceBridge did not write, in the destination's own folders, survive a migrate."""
    table_dir = est.root / "managed-warehouse" / "shop" / "events"
    strays = {
        table_dir / "data" / "day_day=2024-01-01" / "someone-elses.parquet": b"not ours",
        table_dir / "metadata" / "notes.txt": b"left by a person",
        table_dir / "metadata" / "00000-from-another-tool.metadata.json": b"{}",
    }
    for path, data in strays.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    code, report = est.cli_json("migrate")
    assert code == 0, report
    for path, data in strays.items():
        assert path.read_bytes() == data, f"{path} was deleted or changed"
    foreign, managed = est.foreign(), est.managed()
    assert rows(managed.load_table("shop.events"), foreign.load_table("shop.events").schema()) == rows(
        foreign.load_table("shop.events")
    )


def test_a_file_in_the_way_that_icebridge_did_not_write_fails_the_table_untouched(tmp_path: Path) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    source = est.foreign().load_table("shop.regions")
    first = sorted(t.file.file_path for t in source.scan().plan_files())[0]
    relative = first.removeprefix(f"file://{tmp_path}/foreign-warehouse/shop/regions/data/")
    in_the_way = tmp_path / "managed-warehouse" / "shop" / "regions" / "data" / relative
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_bytes(b"somebody else's bytes")
    code, report = est.cli_json("migrate", "--tables", "foreign.shop.regions")
    assert code == 1
    (table,) = report["tables"]
    assert (
        table["status"] == "failed" and "did not write it" in table["message"] and str(in_the_way) in table["message"]
    )
    assert in_the_way.read_bytes() == b"somebody else's bytes"
