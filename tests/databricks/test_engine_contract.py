"""The databricks engine against the local contract server: submit, poll, fallback, retry, cancel, cap, resume."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform, HourTransform, IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from icebridge.engines import BatchCommit, Batching, CopyJob, load_engine
from icebridge.engines.databricks import DatabricksEngine
from icebridge.errors import (
    ConfigError,
    DatabricksRunCancelled,
    DatabricksRunFailed,
    DatabricksRunTransientError,
    DatabricksUnreachableError,
    DestinationConflictError,
    TerminalError,
    TransientError,
)
from icebridge.model import Strategy, TableRef

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN, ContractServer, make_config

pytestmark = pytest.mark.databricks

SNAPSHOT = 7340912
DST = "main.sales.orders"


SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "region`s", StringType(), required=False),
    NestedField(3, "at", TimestamptzType(), required=False),
)
# identity, a transform of another column, a second transform of it and a bucket: CTAS keeps the columns
SPEC = PartitionSpec(
    PartitionField(2, 1000, IdentityTransform(), "region"),
    PartitionField(3, 1001, DayTransform(), "at_day"),
    PartitionField(3, 1002, HourTransform(), "at_hour"),
    PartitionField(1, 1003, BucketTransform(8), "id_bucket"),
)


class FakeTable:
    """What the engine reads of a PyIceberg table: refresh(), metadata.snapshots, current_snapshot()."""

    def __init__(self, snapshots: int = 0) -> None:
        self.metadata = SimpleNamespace(snapshots=[object()] * snapshots)

    def refresh(self) -> FakeTable:
        return self

    def schema(self) -> Schema:
        return SCHEMA

    def spec(self) -> PartitionSpec:
        return SPEC

    def current_snapshot(self) -> Any:
        return SimpleNamespace(
            snapshot_id=99,
            summary=SimpleNamespace(
                additional_properties={"total-records": "1500", "total-data-files": "3", "total-files-size": "4096"}
            ),
        )


def make_job(
    name: str = "orders",
    commits: list[BatchCommit] | None = None,
    cancel: threading.Event | None = None,
    destination: FakeTable | None = None,
    committed: frozenset[int] = frozenset(),
    progress: list[tuple[int, int]] | None = None,
    events: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> CopyJob:
    sink = commits if commits is not None else []
    steps = progress if progress is not None else []
    reports = events if events is not None else []
    return CopyJob(
        task=f"foreign.sales.{name}",
        source_ref=TableRef("foreign", ("sales",), name),
        destination_ref=TableRef("managed", ("sales",), name),
        source=FakeTable(),  # type: ignore[arg-type]
        destination=destination or FakeTable(),  # type: ignore[arg-type]
        snapshot_id=SNAPSHOT,
        strategy=Strategy.DATABRICKS,
        batching=Batching(files=100, bytes=1 << 30),
        chunk_bytes=1 << 20,
        committed_batches=committed,
        on_commit=sink.append,
        cancel=cancel,
        on_progress=lambda files, size: steps.append((files, size)),
        on_event=lambda kind, message, data: reports.append((kind, message, data)),
    )


@pytest.fixture
def engine(contract_server: ContractServer, tmp_path: Path) -> DatabricksEngine:
    config = make_config(tmp_path, host=contract_server.url, token=TOKEN)
    built = load_engine("databricks", config)
    assert isinstance(built, DatabricksEngine)
    return built


def test_full_copy_submits_a_photon_run_polls_it_and_reports_one_commit(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    commits: list[BatchCommit] = []
    progress: list[tuple[int, int]] = []
    events: list[tuple[str, str, dict[str, Any]]] = []
    result = engine.copy(make_job(commits=commits, progress=progress, events=events))

    assert result.batches_total == 1 and result.batches_skipped == 0
    assert commits == [BatchCommit(batch=0, dest_snapshot_id=99, files=3, rows=1500, bytes=4096)]
    assert progress == [(3, 4096)]  # the whole table arrives in one commit: one report of its files and bytes
    [(kind, message, data)] = events
    assert kind == "databricks-run" and "succeeded" in message and data["mode"] == "clone"
    [body] = contract_server.submitted()
    [task] = body["tasks"]
    assert task["new_cluster"]["runtime_engine"] == "PHOTON"
    assert task["new_cluster"]["data_security_mode"] == "SINGLE_USER"
    assert task["spark_python_task"]["python_file"] == engine.script_path
    assert contract_server.files[engine.script_path].startswith(b'"""IceBridge copy job')
    assert len(body["idempotency_token"]) == 64
    assert contract_server.submitted_sql() == [
        [
            "ALTER SCHEMA `main`.`sales` ENABLE PREDICTIVE OPTIMIZATION",
            "CREATE TABLE IF NOT EXISTS `main`.`sales`.`orders` DEEP CLONE `uc_foreign`.`sales`.`orders` "
            f"VERSION AS OF {SNAPSHOT} TBLPROPERTIES ('icebridge.copy-mode' = 'clone', "
            f"'icebridge.source-snapshot-id' = '{SNAPSHOT}', 'icebridge.task' = 'foreign.sales.orders')",
        ]
    ]
    # PENDING -> RUNNING -> RUNNING -> TERMINATED: the engine kept polling until the run ended
    assert len(contract_server.calls("GET", "/api/2.2/jobs/runs/get")) == 4
    [output] = contract_server.calls("GET", "/api/2.2/jobs/runs/get-output")
    assert output["query"]["run_id"] == str(contract_server.runs[int(max(contract_server.runs))].task_run_id)


def test_deep_clone_refused_falls_back_to_ctas(engine: DatabricksEngine, contract_server: ContractServer) -> None:
    contract_server.outcomes.extend(["clone_refused", "success"])
    commits: list[BatchCommit] = []
    engine.copy(make_job(commits=commits))

    clone, ctas = contract_server.submitted_sql()
    assert "DEEP CLONE" in clone[-1]
    assert ctas == [
        "CREATE TABLE IF NOT EXISTS `main`.`sales`.`orders` USING ICEBERG "
        "PARTITIONED BY (`region``s`, `at`, `id`) TBLPROPERTIES ("
        f"'icebridge.copy-mode' = 'ctas', 'icebridge.source-snapshot-id' = '{SNAPSHOT}', "
        f"'icebridge.task' = 'foreign.sales.orders') AS SELECT * FROM `uc_foreign`.`sales`.`orders` "
        f"VERSION AS OF {SNAPSHOT}"
    ]
    assert contract_server.tables[DST]["icebridge.copy-mode"] == "ctas"
    assert [c.batch for c in commits] == [0]


def test_clone_mode_never_falls_back(contract_server: ContractServer, tmp_path: Path) -> None:
    config = make_config(tmp_path, host=contract_server.url, token=TOKEN, copy_mode="clone")
    contract_server.outcomes.append("clone_refused")
    with pytest.raises(DatabricksRunFailed, match=r"UNSUPPORTED_FEATURE.CLONE_SOURCE"):
        DatabricksEngine(config).copy(make_job())
    assert len(contract_server.submitted()) == 1


def test_transient_run_failures_are_retried_with_a_new_run(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    contract_server.outcomes.extend(["cluster_failure", "internal_error", "success"])
    commits: list[BatchCommit] = []
    engine.copy(make_job(commits=commits))
    bodies = contract_server.submitted()
    assert len(bodies) == 3
    assert len({b["idempotency_token"] for b in bodies}) == 3  # a failed run's token is never reused
    assert [c.batch for c in commits] == [0]


def test_transient_failures_beyond_the_attempts_are_a_transient_error(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    contract_server.outcomes.extend(["cluster_failure"] * 3)
    with pytest.raises(DatabricksRunTransientError, match="CLOUD_PROVIDER_LAUNCH_FAILURE") as info:
        engine.copy(make_job())
    assert info.value.transient
    assert DST not in contract_server.tables


def test_http_503_and_429_are_retried_by_the_client(engine: DatabricksEngine, contract_server: ContractServer) -> None:
    contract_server.fail_next.extend([("/api/2.2/jobs/runs/submit", 503), ("/api/2.2/jobs/runs/get", 429)])
    commits: list[BatchCommit] = []
    engine.copy(make_job(commits=commits))
    assert len(contract_server.runs) == 1  # the resent submit carried the same token: one run
    assert len(contract_server.submitted()) == 2
    assert [c.batch for c in commits] == [0]


def test_sql_error_is_terminal_with_the_databricks_message(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    contract_server.outcomes.append("sql_error")
    commits: list[BatchCommit] = []
    with pytest.raises(DatabricksRunFailed) as info:
        engine.copy(make_job(commits=commits))
    message = str(info.value)
    assert not info.value.transient
    assert "[TABLE_OR_VIEW_NOT_FOUND] The table or view `uc_foreign`.`sales`.`orders` cannot be found." in message
    assert "SQLSTATE 42P01" in message
    assert "foreign.sales.orders" in message
    assert len(contract_server.submitted()) == 1 and commits == []


def test_cancel_stops_polling_and_cancels_the_run(engine: DatabricksEngine, contract_server: ContractServer) -> None:
    contract_server.outcomes.append("never")
    cancel = threading.Event()
    original = engine.wait

    def cancel_once_running(job: CopyJob, run_id: int, mode: Any) -> Any:
        threading.Timer(0.2, cancel.set).start()
        return original(job, run_id, mode)

    engine.wait = cancel_once_running  # type: ignore[method-assign]
    with pytest.raises(DatabricksRunCancelled) as info:
        engine.copy(make_job(cancel=cancel))
    assert info.value.transient
    [cancel_call] = contract_server.calls("POST", "/api/2.2/jobs/runs/cancel")
    assert cancel_call["body"] == {"run_id": max(contract_server.runs)}


def test_concurrent_copies_never_exceed_the_run_cap(contract_server: ContractServer, tmp_path: Path) -> None:
    config = make_config(tmp_path, host=contract_server.url, token=TOKEN, max_concurrent_runs=2)
    engine = DatabricksEngine(config)
    contract_server.running_polls = 5
    errors: list[BaseException] = []

    def copy(i: int) -> None:
        try:
            engine.copy(make_job(name=f"t{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=copy, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(contract_server.runs) == 6
    assert contract_server.max_active == 2


def test_a_finished_destination_is_not_copied_again(engine: DatabricksEngine, contract_server: ContractServer) -> None:
    engine.copy(make_job())
    commits: list[BatchCommit] = []
    result = engine.copy(make_job(commits=commits))  # a crash came before the store recorded batch 0
    assert len(contract_server.submitted()) == 1
    assert [c.batch for c in commits] == [0] and result.batches_skipped == 0

    commits.clear()
    result = engine.copy(make_job(commits=commits, committed=frozenset({0})))
    assert commits == [] and result.batches_skipped == 1
    assert len(contract_server.submitted()) == 1


def test_a_run_still_in_flight_is_adopted_not_submitted_again(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    contract_server.outcomes.append("never")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    job = make_job(cancel=cancel)
    # simulate a crash: the first process dies without cancelling its run
    engine._cancel = lambda run_id: None  # type: ignore[method-assign]
    with pytest.raises(DatabricksRunCancelled):
        engine.copy(job)
    [run] = contract_server.runs.values()
    run.outcome = "success"
    commits: list[BatchCommit] = []
    engine.copy(make_job(commits=commits))
    assert len(contract_server.submitted()) == 1
    assert [c.batch for c in commits] == [0]


def test_the_empty_scaffold_is_replaced_but_foreign_data_is_refused(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    contract_server.tables[DST] = {"owner": "someone"}
    engine.copy(make_job(destination=FakeTable(snapshots=0)))
    assert contract_server.submitted_sql()[0][-1].startswith("CREATE OR REPLACE TABLE `main`.`sales`.`orders` DEEP")

    contract_server.tables[DST] = {}
    with pytest.raises(DestinationConflictError, match="already holds data not written by IceBridge"):
        engine.copy(make_job(destination=FakeTable(snapshots=2)))
    assert len(contract_server.submitted()) == 1


def test_a_destination_left_alone_by_if_not_exists_is_a_conflict(
    engine: DatabricksEngine, contract_server: ContractServer
) -> None:
    original = contract_server._finish_outcome

    def someone_else_creates_it_first(run: Any) -> None:
        contract_server.tables[DST] = {"creator": "another job"}
        original(run)

    contract_server._finish_outcome = someone_else_creates_it_first  # type: ignore[method-assign]
    commits: list[BatchCommit] = []
    with pytest.raises(DestinationConflictError, match="does not carry IceBridge's markers"):
        engine.copy(make_job(commits=commits))
    assert commits == []


def test_unreachable_host_fails_fast_with_the_host_and_the_fix(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    config = make_config(
        tmp_path, host=f"http://127.0.0.1:{port}", token=TOKEN, retry_timeout_seconds=1, http_timeout_seconds=1
    )
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            DatabricksEngine(config).copy(make_job())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a hang guard, not a timing assertion
    assert not worker.is_alive(), "the engine hung on an unreachable host"
    [error] = outcome
    assert isinstance(error, DatabricksUnreachableError) and isinstance(error, TransientError)
    assert f"127.0.0.1:{port}" in str(error)
    assert "engines.databricks.host" in str(error)


def test_no_secret_in_errors_or_logs(
    contract_server: ContractServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    contract_server.outcomes.extend(["cluster_failure", "sql_error"])
    config = make_config(tmp_path, host=contract_server.url, token=TOKEN)
    with pytest.raises(DatabricksRunFailed) as info:
        DatabricksEngine(config).copy(make_job())
    # a server that echoes the credential back in its error
    contract_server.unauthorized_message = f"token {TOKEN[:-1]}X is invalid"
    bad = make_config(tmp_path, host=contract_server.url, token=TOKEN[:-1] + "X")
    with pytest.raises(TerminalError) as denied:
        DatabricksEngine(bad).copy(make_job())
    texts = [str(info.value), str(denied.value), caplog.text]
    assert "check the credentials" in str(denied.value)
    for text in texts:
        assert TOKEN not in text and TOKEN[:-1] + "X" not in text


def test_oauth_m2m_through_unified_auth(contract_server: ContractServer, tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        host=contract_server.url,
        auth_type="oauth-m2m",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    commits: list[BatchCommit] = []
    DatabricksEngine(config).copy(make_job(commits=commits))
    assert [c.batch for c in commits] == [0]
    assert contract_server.calls("POST", "/oidc/v1/token")
    submit = contract_server.calls("POST", "/api/2.2/jobs/runs/submit")[0]
    assert submit["headers"]["Authorization"].startswith("Bearer oauth-access-token")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"cluster": {"num_workers": 1}}, "engines.databricks.cluster"),
        ({"max_concurrent_runs": 0}, "engines.databricks.max_concurrent_runs"),
        ({"warehouse": "x"}, "engines.databricks.warehouse"),
        ({"cluster": {"node_type_id": "i3.xlarge", "runtime_engine": "TURBO"}}, "engines.databricks.cluster"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DatabricksEngine(make_config(tmp_path, **settings))


def test_two_level_namespaces_cannot_map_to_unity_catalog(engine: DatabricksEngine) -> None:
    job = make_job()
    job.source_ref = TableRef("foreign", ("a", "b"), "orders")
    with pytest.raises(TerminalError, match="exactly one schema level"):
        engine.copy(job)
