"""Behaviour of every state-store verb, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from icebridge.errors import LeaseLostError, StateError, TaskHeldError
from icebridge.model import Finding, Phase, Severity, Status, TableFacts
from icebridge.store import Store, TaskRow, known_revisions, migrations_config, open_store

TABLES = {"run", "task", "checkpoint", "finding", "validation", "inventory", "event", "written_file"}
ME = "host-a|100|7|run-1"
OTHER = "host-b|200|9|run-2"
LEASE = 60.0
BIG = 2**63 - 1
NEGATIVE = -8_070_450_532_247_928_832


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = open_store(state_url)
    yield s
    s.close()


def _planned(store: Store, name: str = "src.db.orders") -> TaskRow:
    return store.plan_task(name, name.replace("src.", "dst.", 1), "rewrite", "default strategy")


def _facts(table: str = "src.db.orders") -> TableFacts:
    return TableFacts(
        table=table,
        format_version=2,
        location="s3://bucket/db/orders",
        metadata_location="s3://bucket/db/orders/metadata/00003.metadata.json",
        table_uuid="6f1c4e1a-1b2c-4d5e-8f90-123456789abc",
        current_schema_id=1,
        default_spec_id=0,
        default_sort_order_id=0,
        schema_count=2,
        spec_count=1,
        snapshot_count=3,
        current_snapshot_id=BIG,
        data_files=12,
        delete_files=1,
        position_delete_files=1,
        equality_delete_files=0,
        data_bytes=10_000_000_000,
        delete_bytes=2048,
        records=5_000_000_000,
        file_formats=("PARQUET",),
        partition_fields=("day(ts)", "bucket(16, id)"),
        properties={"write.format.default": "parquet"},
    )


# ------------------------------------------------------------------ migrations


def test_open_creates_every_table_and_reopen_is_a_noop(state_url: str) -> None:
    first = open_store(state_url)
    first.close()
    engine = create_engine(state_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
        head = ScriptDirectory.from_config(migrations_config()).get_current_head()
        assert revision == head == "0008"
    finally:
        engine.dispose()

    second = open_store(state_url)
    try:
        run = second.start_run("plan", "icebridge.yaml", {})
        assert second.get_run(run.id) == run
    finally:
        second.close()
    third = open_store(state_url)
    try:
        assert [r.id for r in third.list_runs()] == [run.id]
    finally:
        third.close()


def _schema(url: str) -> dict[str, object]:
    """Tables with their columns (name, type, nullable, default), indexes, unique constraints and keys."""
    engine = create_engine(url)
    try:
        seen = inspect(engine)
        out: dict[str, object] = {}
        for table in sorted(seen.get_table_names()):
            out[table] = {  # columns added by a later migration come last there: compare them as a set
                "columns": sorted(
                    (c["name"], type(c["type"]).__name__, c["nullable"], str(c.get("default")))
                    for c in seen.get_columns(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in seen.get_indexes(table)
                ),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in seen.get_unique_constraints(table)),
                "foreign": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"]) for f in seen.get_foreign_keys(table)
                ),
                "primary": tuple(seen.get_pk_constraint(table)["constrained_columns"]),
            }
        return out
    finally:
        engine.dispose()


def test_a_new_store_has_exactly_the_schema_the_migrations_build(state_url: str, tmp_path: Path) -> None:
    from alembic import command

    open_store(state_url).close()  # created at once from the models, stamped at head
    if state_url.startswith("sqlite"):
        migrated_url = f"sqlite:///{tmp_path}/migrated.db"
    else:
        from tests.conftest import PG_ADMIN_URL, fresh_pg_database

        migrated_url = fresh_pg_database(PG_ADMIN_URL, "icebridge_migrated_")
    engine = create_engine(migrated_url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrations_config(conn), "head")  # built step by step
    finally:
        engine.dispose()
    assert _schema(state_url) == _schema(migrated_url)


def test_a_store_of_an_older_revision_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations_config(conn), "0002")
        conn.exec_driver_sql(
            "INSERT INTO run (kind, status, config_path, args, summary, started_at) "
            "VALUES ('plan', 'succeeded', 'c.yaml', '{}', '{}', '2026-01-01 00:00:00')"
        )
    engine.dispose()
    store = open_store(url)
    try:
        assert [r.kind for r in store.list_runs()] == ["plan"]
        task = _planned(store)
        assert store.claim_task(task.id, ME, 1, "copy", LEASE).owner == ME  # the lease columns exist now
    finally:
        store.close()


def test_known_revisions_are_the_migration_scripts() -> None:
    script = ScriptDirectory.from_config(migrations_config())
    assert known_revisions() == sorted(r.revision for r in script.walk_revisions())
    assert known_revisions()[-1] == script.get_current_head()


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    store = open_store(f"sqlite:///{path}")
    store.close()
    assert path.exists()


def test_unreachable_postgres_raises_state_error_without_password() -> None:
    url = "postgresql+psycopg2://ice:s3cr3t-pw@127.0.0.1:1/state"
    started = time.monotonic()
    with pytest.raises(StateError) as info:
        open_store(url)
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "postgresql+psycopg2://ice:***@127.0.0.1:1/state" in message
    assert "s3cr3t-pw" not in message
    assert "fix:" in message


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://user:pw0rd@host/db"])
def test_malformed_url_raises_state_error(url: str) -> None:
    with pytest.raises(StateError) as info:
        open_store(url)
    assert "pw0rd" not in str(info.value)
    assert "fix:" in str(info.value)


# ------------------------------------------------------------------------ runs


def test_runs_lifecycle(store: Store) -> None:
    first = store.start_run("inventory", "/etc/icebridge.yaml", {"tables": ["a.b.c"]})
    assert first.status == "running" and first.finished_at is None
    assert first.started_at.tzinfo is not None
    second = store.start_run("migrate", "/etc/icebridge.yaml", {"workers": 4})
    done = store.finish_run(second.id, "succeeded", {"migrated": 3})
    assert done.status == "succeeded" and done.summary == {"migrated": 3}
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert done.finished_at.utcoffset() == UTC.utcoffset(None)
    store.set_run_report(second.id, "/tmp/report.html")
    got = store.get_run(second.id)
    assert got is not None and got.report_path == "/tmp/report.html" and got.args == {"workers": 4}
    assert [r.id for r in store.list_runs()] == [second.id, first.id]
    assert [r.id for r in store.list_runs(limit=1)] == [second.id]
    assert store.get_run(9999) is None
    with pytest.raises(StateError):
        store.finish_run(9999, "failed", {})


# ----------------------------------------------------------------------- tasks


def test_plan_task_inserts_pending_planned_task(store: Store) -> None:
    task = store.plan_task("src.db.orders", "dst.db.orders", "rewrite", "v1 table")
    assert (task.phase, task.status, task.version, task.attempts) == (Phase.PLANNED, Status.PENDING, 1, 0)
    assert task.duration_seconds is None
    assert store.get_task("src.db.orders") == task
    assert store.get_task_by_id(task.id) == task
    assert store.get_task("src.db.nothing") is None


def test_plan_task_updates_a_planned_task(store: Store) -> None:
    task = store.plan_task("src.db.orders", "dst.db.orders", "rewrite", "v1 table")
    again = store.plan_task("src.db.orders", "dst.db.orders2", "file-copy", "same layout")
    assert again.id == task.id
    assert (again.destination, again.strategy, again.reason) == ("dst.db.orders2", "file-copy", "same layout")
    assert again.version == task.version + 1


def test_plan_task_in_later_phase(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    claimed = store.claim_task(task.id, ME, run.id, "copy", LEASE)
    same = store.plan_task(task.source, task.destination, "file-copy", "changed my mind")
    assert same == claimed  # unchanged, strategy not updated
    with pytest.raises(StateError) as info:
        store.plan_task(task.source, "dst.db.elsewhere", "rewrite", "moved")
    message = str(info.value)
    assert "dst.db.orders" in message and "dst.db.elsewhere" in message and "roll back" in message


def test_plan_task_rejects_two_sources_onto_one_destination(store: Store) -> None:
    store.plan_task("src.a.t", "dst.x.t", "rewrite", "r")
    with pytest.raises(StateError) as info:
        store.plan_task("src.b.t", "dst.x.t", "rewrite", "r")
    assert "src.a.t" in str(info.value) and "src.b.t" in str(info.value)
    assert store.get_task("src.b.t") is None


def test_list_tasks_ordered_and_filtered(store: Store) -> None:
    for name in ["src.b.t2", "src.a.t1", "src.b.t1", "src.B.t3"]:
        _planned(store, name)
    assert [t.source for t in store.list_tasks()] == ["src.B.t3", "src.a.t1", "src.b.t1", "src.b.t2"]
    assert [t.source for t in store.list_tasks("src.b.*")] == ["src.b.t1", "src.b.t2"]
    assert [t.source for t in store.list_tasks("*.t1")] == ["src.a.t1", "src.b.t1"]


def test_task_lifecycle_claim_advance_complete(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    claimed = store.claim_task(task.id, ME, run.id, Phase.SCAFFOLD, LEASE)
    assert (claimed.status, claimed.phase, claimed.run_id, claimed.attempts, claimed.owner) == (
        Status.RUNNING,
        Phase.SCAFFOLD,
        run.id,
        1,
        ME,
    )
    assert claimed.version == task.version + 1 and claimed.started_at is not None
    assert claimed.lease_until is not None and claimed.lease_until > datetime.now(UTC)
    advanced = store.advance_task(claimed, "copy", source_snapshot_id=BIG, rows=10, bytes=99)
    assert (advanced.phase, advanced.status) == (Phase.COPY, Status.RUNNING)
    assert (advanced.source_snapshot_id, advanced.rows, advanced.bytes) == (BIG, 10, 99)
    assert advanced.started_at == claimed.started_at
    done = store.complete_task(advanced, "migrated", rows=1000, bytes=4096)
    assert (done.status, done.phase, done.rows, done.bytes) == (Status.SUCCEEDED, Phase.MIGRATED, 1000, 4096)
    assert done.finished_at is not None and done.duration_seconds is not None and done.duration_seconds >= 0
    assert done.version == task.version + 3
    assert (done.owner, done.lease_until) == (None, None)  # released
    with pytest.raises(TypeError):
        store.advance_task(claimed, "copy", colour=1)


def test_a_held_task_cannot_be_claimed_by_another_owner(store: Store) -> None:
    first = store.start_run("migrate", "c.yaml", {})
    second = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    claimed = store.claim_task(task.id, ME, first.id, "copy", LEASE)
    with pytest.raises(TaskHeldError) as info:
        store.claim_task(task.id, OTHER, second.id, "copy", LEASE)
    held = info.value
    assert (held.holder, held.run_id, held.since) == (ME, first.id, claimed.claimed_at)
    assert task.source in str(held) and f"run {first.id}" in str(held)
    assert store.get_task_by_id(task.id) == claimed  # untouched


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_write(store: Store) -> None:
    first = store.start_run("migrate", "c.yaml", {})
    second = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    stale = store.claim_task(task.id, ME, first.id, "copy", lease_seconds=0.01)
    time.sleep(0.05)
    taken = store.claim_task(task.id, OTHER, second.id, "copy", LEASE)
    assert (taken.owner, taken.run_id, taken.attempts) == (OTHER, second.id, 2)
    for verb in (
        lambda: store.advance_task(stale, "validate"),
        lambda: store.complete_task(stale, "migrated"),
        lambda: store.fail_task(stale, "copy", "boom", "terminal"),
    ):
        with pytest.raises(LeaseLostError):
            verb()
    assert store.get_task_by_id(task.id).owner == OTHER


def test_a_known_dead_holder_is_taken_over_before_its_lease_expires(store: Store) -> None:
    first = store.start_run("migrate", "c.yaml", {})
    second = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    store.claim_task(task.id, ME, first.id, "copy", LEASE)
    with pytest.raises(TaskHeldError):
        store.claim_task(task.id, OTHER, second.id, "copy", LEASE, take_from="somebody else")
    taken = store.claim_task(task.id, OTHER, second.id, "copy", LEASE, take_from=ME)
    assert taken.owner == OTHER


def test_heartbeat_extends_only_the_owners_leases(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    mine, theirs = _planned(store, "src.db.a"), _planned(store, "src.db.b")
    short = store.claim_task(mine.id, ME, run.id, "copy", lease_seconds=1)
    other = store.claim_task(theirs.id, OTHER, run.id, "copy", lease_seconds=1)
    assert store.renew_leases(ME, LEASE) == {mine.id}
    renewed = store.get_task_by_id(mine.id)
    assert renewed.lease_until is not None and short.lease_until is not None
    assert renewed.lease_until > short.lease_until
    assert store.get_task_by_id(theirs.id).lease_until == other.lease_until


def test_reclaim_in_same_run_keeps_started_at(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    first = store.claim_task(task.id, ME, run.id, "scaffold", LEASE)
    second = store.claim_task(first.id, ME, run.id, "copy", LEASE)
    assert second.started_at == first.started_at and second.attempts == 2


def test_racing_threads_exactly_one_claim_wins(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    barrier = threading.Barrier(8)
    wins: list[TaskRow] = []
    losses: list[TaskHeldError] = []
    others: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        try:
            row = store.claim_task(task.id, f"{OTHER}-{n}", run.id, "copy", LEASE)
        except TaskHeldError as exc:
            with lock:
                losses.append(exc)
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                others.append(exc)
        else:
            with lock:
                wins.append(row)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not others, others
    assert len(wins) == 1 and len(losses) == 7
    assert {loss.holder for loss in losses} == {wins[0].owner}
    final = store.get_task_by_id(task.id)
    assert final.version == task.version + 1 and final.attempts == 1


def test_threads_write_different_tasks_concurrently(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    tasks = [_planned(store, f"src.db.t{i}") for i in range(8)]
    errors: list[BaseException] = []

    def worker(task: TaskRow) -> None:
        try:
            row = store.claim_task(task.id, ME, run.id, "copy", LEASE)
            for batch in range(5):
                store.record_checkpoint(row.id, run.id, 1, batch, None, 1, 10, 100)
                store.event("batch", f"batch {batch}", run_id=run.id, task_id=row.id)
                row = store.advance_task(row, "copy", rows=(batch + 1) * 10)
            store.complete_task(row, "migrated")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(t.status == Status.SUCCEEDED and t.rows == 50 for t in store.list_tasks())
    assert len(store.events(run_id=run.id)) == 40


def test_fail_task_records_error(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    claimed = store.claim_task(task.id, ME, run.id, "copy", LEASE)
    with pytest.raises(ValueError):
        store.fail_task(claimed, "copy", "x", "sometimes")
    failed = store.fail_task(claimed, "validate", "row counts differ: 10 != 9", "terminal")
    assert (failed.status, failed.phase) == (Status.FAILED, Phase.VALIDATE)
    assert (failed.error, failed.error_kind) == ("row counts differ: 10 != 9", "terminal")
    assert failed.finished_at is not None and failed.owner is None
    assert store.get_task(task.source) == failed
    retried = store.claim_task(failed.id, OTHER, run.id, "copy", LEASE)
    assert retried.error is None and retried.error_kind is None and retried.finished_at is None
    assert retried.attempts == 2


def test_reset_task_keeps_counters(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    claimed = store.claim_task(task.id, ME, run.id, "copy", LEASE)
    claimed = store.advance_task(claimed, "copy", rows=7, bytes=70)
    reset = store.reset_task(claimed)
    assert (reset.phase, reset.status, reset.rows, reset.bytes, reset.attempts, reset.owner) == (
        Phase.PLANNED,
        Status.PENDING,
        7,
        70,
        1,
        None,
    )
    with pytest.raises(StateError):
        store.reset_task(reset)  # released: nothing held to reset


def test_set_archive_sets_and_clears(store: Store) -> None:
    run = store.start_run("cutover", "c.yaml", {})
    task = store.claim_task(_planned(store).id, ME, run.id, "cutover", LEASE)
    archived = store.set_archive(task, "s3://b/t/metadata/00009.metadata.json")
    assert archived.archived_metadata_location == "s3://b/t/metadata/00009.metadata.json"
    assert archived.archived_at is not None
    cleared = store.set_archive(archived, None)
    assert cleared.archived_metadata_location is None and cleared.archived_at is None


def test_unknown_task_raises_state_error(store: Store) -> None:
    with pytest.raises(StateError):
        store.get_task_by_id(12345)
    with pytest.raises(StateError):
        store.claim_task(12345, ME, 1, "copy", LEASE)


def test_written_files_are_recorded_once_and_settled(store: Store) -> None:
    task = _planned(store)
    paths = [f"s3://b/t/data/{i}.parquet" for i in range(3)]
    store.record_written(task.id, None, ME, paths)
    store.record_written(task.id, None, ME, [paths[0], "file:///w/t/metadata/snap.avro"])
    assert store.written_files(task.id) == [*paths, "file:///w/t/metadata/snap.avro"]
    assert store.is_written(task.id, "file:/w/t/metadata/snap.avro")  # one spelling per place
    assert store.written_among(task.id, [paths[1], "s3://b/t/data/9.parquet"]) == {paths[1]}
    store.forget_written(task.id, paths[:2])
    assert store.written_files(task.id) == [paths[2], "file:///w/t/metadata/snap.avro"]


# ----------------------------------------------------------------- checkpoints


def test_checkpoints_are_idempotent_and_hold_64_bit_ids(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    first = store.record_checkpoint(task.id, run.id, BIG, 0, NEGATIVE, 3, 300, 3000)
    again = store.record_checkpoint(task.id, run.id, BIG, 0, 42, 99, 99, 99)
    assert again == first
    assert (first.source_snapshot_id, first.dest_snapshot_id) == (BIG, NEGATIVE)
    store.record_checkpoint(task.id, run.id, BIG, 2, BIG, 1, 10, 100)
    store.record_checkpoint(task.id, run.id, BIG, 1, None, 1, 10, 100)
    store.record_checkpoint(task.id, None, NEGATIVE, 0, None, 1, 5_000_000_000, 2**40)
    assert [c.batch for c in store.checkpoints(task.id, BIG)] == [0, 1, 2]
    other = store.checkpoints(task.id, NEGATIVE)
    assert len(other) == 1 and other[0].rows == 5_000_000_000 and other[0].run_id is None
    assert len(store.checkpoints(task.id)) == 4
    held = store.claim_task(task.id, ME, run.id, "copy", LEASE)
    task_big = store.advance_task(held, "copy", source_snapshot_id=NEGATIVE)
    assert store.get_task_by_id(task.id).source_snapshot_id == NEGATIVE == task_big.source_snapshot_id


def test_checkpoint_for_missing_task_raises(store: Store) -> None:
    with pytest.raises(StateError):
        store.record_checkpoint(777, None, 1, 0, None, 0, 0, 0)


# ------------------------------------------------------------- findings etc.


def test_findings_by_run(store: Store) -> None:
    first = store.start_run("preflight", "c.yaml", {})
    second = store.start_run("preflight", "c.yaml", {})
    assert store.findings() == []
    added = store.add_findings(
        first.id,
        [
            Finding("src.a.t", Severity.BLOCKER, "V1_TABLE", "format v1", "upgrade to v2"),
            Finding("src.a.u", Severity.INFO, "SMALL", "tiny table"),
        ],
    )
    assert added == 2
    assert store.add_findings(second.id, [Finding("src.a.u", Severity.WARNING, "DELETES", "has deletes")]) == 1
    assert store.add_findings(second.id, []) == 0
    latest = store.findings()
    assert [(f.run_id, f.table, f.severity, f.code) for f in latest] == [
        (second.id, "src.a.u", Severity.WARNING, "DELETES")
    ]
    old = store.findings(first.id)
    assert [f.code for f in old] == ["V1_TABLE", "SMALL"]
    assert old[0].to_finding() == Finding("src.a.t", Severity.BLOCKER, "V1_TABLE", "format v1", "upgrade to v2")
    assert [f.code for f in store.findings(first.id, table="src.a.u")] == ["SMALL"]
    assert [f.code for f in store.findings(table="src.a.t")] == ["V1_TABLE"]


def test_validations(store: Store) -> None:
    run = store.start_run("validate", "c.yaml", {})
    other = store.start_run("validate", "c.yaml", {})
    task = _planned(store)
    v1 = store.record_validation(task.id, run.id, 1, "row_count", True, {"source": 10, "dest": 10})
    store.record_validation(task.id, run.id, 2, "checksum", False, {"column": "id"})
    store.record_validation(task.id, other.id, 1, "row_count", True, {})
    assert v1.passed is True and v1.details == {"source": 10, "dest": 10} and v1.level == 1
    of_run = store.validations(task.id, run.id)
    assert [(v.comparator, v.passed) for v in of_run] == [("row_count", True), ("checksum", False)]
    assert len(store.validations(task.id)) == 3


def test_inventory_round_trip(store: Store) -> None:
    assert store.load_inventory() == [] and store.inventory_captured_at() is None
    facts = [_facts("src.db.zeta"), _facts("src.db.alpha")]
    before = datetime.now(UTC)
    store.save_inventory(facts)
    loaded = store.load_inventory()
    assert loaded == sorted(facts, key=lambda f: f.table)
    assert loaded[0].current_snapshot_id == BIG and loaded[0].partition_fields == (
        "day(ts)",
        "bucket(16, id)",
    )
    captured = store.inventory_captured_at()
    assert captured is not None and captured.tzinfo is not None and captured >= before.replace(microsecond=0)
    store.save_inventory([_facts("src.db.only")])
    assert [f.table for f in store.load_inventory()] == ["src.db.only"]


def test_events_kept_in_order(store: Store) -> None:
    run = store.start_run("migrate", "c.yaml", {})
    task = _planned(store)
    for i in range(5):
        store.event("progress", f"step {i}", run_id=run.id, task_id=task.id, data={"i": i})
    store.event("note", "unrelated")
    events = store.events(run_id=run.id)
    assert [e.message for e in events] == [f"step {i}" for i in range(5)]
    assert [e.data for e in events] == [{"i": i} for i in range(5)]
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))
    assert len(store.events()) == 6 and store.events()[-1].data is None
    assert [e.message for e in store.events(task_id=task.id, limit=2)] == ["step 3", "step 4"]


def test_throughput_samples_come_from_timed_checkpoints(state_url: str) -> None:
    store = open_store(state_url)
    try:
        run = store.start_run("migrate", "icebridge.yaml", {})
        task = store.plan_task("foreign.a.t", "managed.a.t", "file-copy", "plain Parquet")
        store.record_checkpoint(task.id, run.id, 1, 0, 10, 2, 100, 4096, 0.5)
        store.record_checkpoint(task.id, run.id, 1, 1, None, 0, 0, 0)  # settled after a crash: not timed
        assert store.throughput_samples() == [("file-copy", 4096, 0.5)]
    finally:
        store.close()
