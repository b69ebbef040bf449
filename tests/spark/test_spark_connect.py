"""The spark engine as a Spark Connect client (``engines.spark.remote``): what happens before any server answers.

No test here runs a Spark Connect server: pyspark 3.5 does not include the server (``spark-connect_2.12``),
so a migration over Connect is not exercised end to end; what a Connect error carries is tested by
building the client's own exception type.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
import yaml

from icebridge.config import load_config
from icebridge.engines.spark import SparkSettings, build_session
from icebridge.errors import ConfigError, EngineNotInstalledError, TerminalError


def write_config(tmp_path: Path, remote: str) -> Path:
    """An icebridge.yaml whose spark engine is a Connect client of ``remote``."""
    path = tmp_path / "icebridge.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state": f"sqlite:///{tmp_path}/state.db",
                "catalogs": {"src": {"type": "sql", "uri": f"sqlite:///{tmp_path}/c.db"}},
                "mappings": [{"source": "src.*.*", "target": "src.dst"}],
                "engines": {"spark": {"remote": remote}},
            }
        )
    )
    return path


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ("sc://:15002", "no host"),
        ("sc://spark.internal:connect", "the port is not a number"),
        ("sc://spark.internal:99999", "the port is not a number"),
    ],
)
def test_a_connect_url_without_host_or_port_names_the_key(tmp_path: Path, remote: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SparkSettings.from_config(load_config(write_config(tmp_path, remote)))
    assert "icebridge.yaml: engines.spark.remote: " in str(caught.value)
    assert message in str(caught.value)
    assert "write sc://host:15002" in str(caught.value)


def test_a_connect_url_with_params_and_default_port_is_accepted() -> None:
    assert SparkSettings(remote="sc://spark.internal/;token=abc").remote == "sc://spark.internal/;token=abc"


def test_missing_connect_client_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # import grpc now raises ImportError
    with pytest.raises(EngineNotInstalledError) as caught:
        build_session(SparkSettings(remote=f"sc://127.0.0.1:{closed_port()}"))
    assert "engines.spark.remote" in str(caught.value)
    assert "grpcio" in str(caught.value)
    assert "pip install 'icebridge[spark]'" in str(caught.value)


def test_no_server_at_the_connect_url_fails_at_once_naming_it() -> None:
    # without the check the Connect client retries an unreachable server for minutes
    port = closed_port()
    with pytest.raises(TerminalError) as caught:
        build_session(SparkSettings(remote=f"sc://127.0.0.1:{port}"))
    assert f"engines.spark.remote: no Spark Connect server answers at 127.0.0.1:{port}" in str(caught.value)


def connect_error(reason: str, classes: list[str], message: str) -> Exception:
    """The exception a Spark Connect client raises for a server error, raised as the client raises it.

    The server sends the exception's class (``ErrorInfo.reason``) and every class it inherits from
    (``classes``) in the gRPC status details; pyspark 3.5 builds its exception from the message and
    raises it while handling the gRPC error, which stays its ``__context__``.
    """
    import grpc
    from google.protobuf import any_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2
    from pyspark.errors.exceptions.connect import convert_exception

    info = error_details_pb2.ErrorInfo(
        reason=reason, domain="org.apache.spark", metadata={"classes": json.dumps(classes)}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[detail])

    class ServerError(grpc.RpcError, grpc.Call):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.INTERNAL

        def details(self) -> str:
            return message

        def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
            return (("grpc-status-details-bin", status.SerializeToString()),)

        def initial_metadata(self) -> tuple[()]:
            return ()

        def is_active(self) -> bool:
            return False

        def time_remaining(self) -> None:
            return None

        def cancel(self) -> bool:
            return False

        def add_callback(self, callback: object) -> bool:
            return False

    try:
        try:
            raise ServerError()
        except grpc.RpcError:
            raise convert_exception(info, status.message) from None
    except Exception as converted:
        return converted
    raise AssertionError("unreachable")


def test_a_commit_conflict_reported_over_connect_is_retried_not_terminal(tmp_path: Path) -> None:
    # over Connect the exception carries no Java exception chain; the gRPC error behind it names the classes
    from icebridge.engines.spark import SparkEngine
    from icebridge.errors import CommitConflictError, DestinationWriteError, TransientError
    from icebridge.model import TableRef

    engine = SparkEngine(load_config(write_config(tmp_path, "sc://spark.internal:15002")))
    job = type("Job", (), {"task": "t-1", "destination_ref": TableRef.parse("src.dst.orders")})()
    conflict = connect_error(
        "org.apache.iceberg.exceptions.CommitFailedException",
        ["org.apache.iceberg.exceptions.CommitFailedException", "java.lang.RuntimeException", "java.lang.Exception"],
        "Cannot commit src.dst.orders: metadata location has changed",
    )
    error = engine._error(job, conflict)  # type: ignore[arg-type]
    assert isinstance(error, CommitConflictError) and isinstance(error, TransientError)
    assert "conflicted" in str(error) and "src.dst.orders" in str(error)

    # the class is read from the error's details, never from its text
    named_in_text = connect_error(
        "org.apache.spark.sql.AnalysisException",
        ["org.apache.spark.sql.AnalysisException", "java.lang.Exception"],
        "[TABLE_OR_VIEW_NOT_FOUND] src.x.y cannot be found; not a org.apache.iceberg.exceptions.CommitFailedException",
    )
    other = engine._error(job, named_in_text)  # type: ignore[arg-type]
    assert isinstance(other, DestinationWriteError) and not isinstance(other, TransientError)
    bare = engine._error(job, RuntimeError("org.apache.iceberg.exceptions.CommitFailedException"))  # type: ignore[arg-type]
    assert isinstance(bare, DestinationWriteError)
