"""What a first-time user runs into: paths, options, wording, and mistakes that must end in one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from icebridge.store import open_store
from tests.integration.test_behaviour import SOURCES, Estate, make_estate, rows


def icebridge(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icebridge", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **env},
        check=False,
    )


@pytest.fixture
def local(tmp_path: Path) -> Estate:
    """The small estate on SQLite with the state store left at its default place."""
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    config = yaml.safe_load(est.config.read_text())
    del config["state"]
    est.config.write_text(yaml.safe_dump(config))
    est.state_url = f"sqlite:///{tmp_path}/.icebridge/state.db"
    return est


def assert_one_clear_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for word in words:
        assert word in done.stderr.replace("\n", " "), done.stderr


def test_the_default_store_and_reports_live_beside_the_configuration(local: Estate, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    migrated = icebridge("migrate", "-c", str(local.config), "--tables", "*events*", cwd=local.root)
    assert migrated.returncode == 0, migrated.stderr
    status = icebridge("status", "-c", str(local.config), "--json", cwd=elsewhere)
    assert status.returncode == 0, status.stderr
    assert "foreign.shop.events" in status.stdout and '"kind": "migrate"' in status.stdout
    assert list(elsewhere.iterdir()) == [], "nothing is created in the folder the command ran from"
    assert (local.root / ".icebridge" / "state.db").is_file()
    assert list((local.root / ".icebridge" / "reports").glob("run-*/report.html"))


def test_config_and_json_are_accepted_before_the_command(est: Estate) -> None:
    code, out = est.cli("plan")  # -c after the command, as always
    assert code == 0
    from typer.testing import CliRunner

    from icebridge.cli import app

    result = CliRunner().invoke(app, ["-c", str(est.config), "--json", "status"])
    assert result.exit_code == 0, result.output
    assert '"runs"' in result.output and '"tables"' in result.output


def test_data_docs_only_when_the_configuration_asks(local: Estate) -> None:
    args = ("migrate", "-c", str(local.config), "--tables", "*regions*", "--json")
    done = icebridge(*args, cwd=local.root, PYTHONPROFILEIMPORTTIME="1")
    assert done.returncode == 0, done.stderr
    assert '"data_docs": null' in done.stdout
    assert "great_expectations" not in done.stderr, "Great Expectations is imported only when asked for"
    config = yaml.safe_load(local.config.read_text())
    config["reports"] = {"data_docs": True}
    local.config.write_text(yaml.safe_dump(config))
    again = icebridge("validate", "-c", str(local.config), "--tables", "*regions*", "--json", cwd=local.root)
    assert again.returncode == 0, again.stderr
    docs = next(line for line in again.stdout.splitlines() if '"data_docs"' in line)
    assert "index.html" in docs


def test_a_misspelled_catalog_property_is_a_blocker_naming_the_key(est: Estate) -> None:
    config = yaml.safe_load(est.config.read_text())
    config["catalogs"]["managed"]["warehous"] = config["catalogs"]["managed"].pop("warehouse")
    est.config.write_text(yaml.safe_dump(config))
    code, report = est.cli_json("preflight")
    assert code == 1
    blockers = [f for f in report["findings"] if f["severity"] == "blocker"]
    assert {f["code"] for f in blockers} >= {"catalog-property", "no-location"}
    named = next(f for f in blockers if f["code"] == "catalog-property")
    assert "catalogs.managed.warehous" in named["message"] and "'warehouse'" in named["message"]
    code, migrated = est.cli_json("migrate")
    assert code == 1
    assert all("catalogs.managed.warehous" in t["message"] for t in migrated["tables"])
    assert "ValueError" not in str(migrated)


def test_inventory_creates_nothing_in_any_catalog_or_warehouse(tmp_path: Path) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    managed_db, managed_wh = tmp_path / "managed.db", tmp_path / "managed-warehouse"
    for path in (managed_db, managed_wh):
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "state.db" not in p.name)
    code, inventory = est.cli_json("inventory", "--refresh")
    assert code == 0, inventory
    assert len(inventory["tables"]) == len(SOURCES)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "state.db" not in p.name)
    assert after == before


def test_migrate_after_a_cut_over_reports_it_cut_over(est: Estate) -> None:
    assert est.cli("migrate")[0] == 0
    assert est.cli("cutover", "--tables", "*events*")[0] == 0
    for refresh in (False, True):
        if refresh:
            assert est.cli("inventory", "--refresh")[0] == 0  # the cut-over source is gone from its catalog
        code, again = est.cli_json("migrate")
        assert code == 0, again
        by_source = {t["source"]: t for t in again["tables"]}
        assert by_source["foreign.shop.events"]["status"] == "succeeded"
        assert by_source["foreign.shop.events"]["message"] == "already cut over"


def test_status_durations_are_work_time(est: Estate) -> None:
    source = est.foreign().load_table("shop.regions")
    victim = Path(sorted(t.file.file_path for t in source.scan().plan_files())[0].removeprefix("file://"))
    kept = victim.read_bytes()
    victim.unlink()
    started = time.monotonic()
    code, first = est.cli_json("migrate", "--tables", "*regions*")
    assert code == 1
    time.sleep(2.0)  # idle between two attempts: not work
    victim.write_bytes(kept)
    code, second = est.cli_json("migrate", "--tables", "*regions*")
    assert code == 0, second
    wall = time.monotonic() - started
    code, status = est.cli_json("status", "--tables", "*regions*")
    (task,) = status["tables"]
    attempts = first["tables"][0]["seconds"] + second["tables"][0]["seconds"]
    assert task["attempts"] == 2
    assert attempts * 0.9 <= task["duration_seconds"] < wall - 1.5


def test_an_empty_tables_pattern_is_an_error_not_every_table(est: Estate) -> None:
    for command in ("plan", "migrate", "validate", "status"):
        code, out = est.cli(command, "--tables", "")
        assert code == 2, (command, out)
        assert "--tables ''" in out
    assert est.managed().list_namespaces() == []


def test_plan_wording_and_units(est: Estate) -> None:
    code, out = est.cli("plan")
    assert code == 0
    assert not re.search(r"(?<![0-9.])0\.0 [KMG]iB", out) and "about 0 s" not in out
    assert " MB" not in out and " KB" not in out  # one unit system: KiB, MiB, GiB
    assert "KiB" in out or "MiB" in out
    from typer.testing import CliRunner

    from icebridge.cli import app

    help_text = CliRunner().invoke(app, ["--help"]).output
    version_line = next(line for line in help_text.splitlines() if "--version" in line)
    assert "Print the version" in version_line


def test_unreadable_configuration_files_end_in_one_clear_line(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("catalogs: {}\n# caf\xe9\n".encode("latin-1"))
    assert_one_clear_line(icebridge("status", "-c", str(latin1), cwd=tmp_path), 2, str(latin1), "UTF-8")
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    assert_one_clear_line(icebridge("plan", "-c", str(folder), cwd=tmp_path), 2, str(folder))


def test_a_store_written_by_a_newer_icebridge_is_refused_untouched(local: Estate) -> None:
    assert icebridge("plan", "-c", str(local.config), cwd=local.root).returncode == 0
    engine = create_engine(local.state_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    done = icebridge("status", "-c", str(local.config), cwd=local.root)
    assert_one_clear_line(done, 2, "newer IceBridge", "0999")
    engine = create_engine(local.state_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0999"
    engine.dispose()


def test_a_report_folder_that_cannot_be_made_is_one_line_and_the_run_is_still_recorded(local: Estate) -> None:
    blocker = local.root / "not-a-folder"
    blocker.write_text("a file where the reports folder should be")
    config = yaml.safe_load(local.config.read_text())
    config["reports"] = str(blocker / "reports")
    local.config.write_text(yaml.safe_dump(config))
    done = icebridge("migrate", "-c", str(local.config), "--tables", "*regions*", cwd=local.root)
    assert_one_clear_line(done, 2, "report", str(blocker))
    store = open_store(local.state_url)
    try:
        (run,) = [r for r in store.list_runs() if r.kind == "migrate"]
        assert run.status == "succeeded" and run.finished_at is not None
    finally:
        store.close()
    destination, source = local.managed().load_table("shop.regions"), local.foreign().load_table("shop.regions")
    assert rows(destination, source.schema()) == rows(source)
