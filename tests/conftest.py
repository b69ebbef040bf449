"""Shared fixtures: the PostgreSQL server, fresh databases, and the state URL on both backends."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from tests.integration.test_behaviour import Estate

REPO_ROOT = Path(__file__).resolve().parent.parent
ENSURE_POSTGRES = REPO_ROOT / "scripts" / "ensure-postgres.sh"
PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

_created_databases: list[str] = []


def _admin_execute(admin_url: str, *statements: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def fresh_pg_database(admin_url: str, prefix: str) -> str:
    """Create a uniquely named empty database and return its URL; it is dropped at session end."""
    name = f"{prefix}{uuid.uuid4().hex}".lower()
    _admin_execute(admin_url, f'CREATE DATABASE "{name}"')
    _created_databases.append(name)
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Ensure PostgreSQL runs on 127.0.0.1:5432 (fails, never skips) and yield its admin URL."""
    result = subprocess.run(["bash", str(ENSURE_POSTGRES)], capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"{ENSURE_POSTGRES} failed with exit code {result.returncode}:\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    yield PG_ADMIN_URL
    while _created_databases:
        name = _created_databases.pop()
        _admin_execute(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state-store URL on an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    admin_url: str = request.getfixturevalue("pg_server")
    return fresh_pg_database(admin_url, "icebridge_test_")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """State store and both catalogs on SQLite files, or on fresh PostgreSQL databases."""
    if request.param == "sqlite":
        return {
            "kind": "sqlite",
            "state": f"sqlite:///{tmp_path}/state.db",
            "foreign": "",
            "managed": "",
        }
    admin: str = request.getfixturevalue("pg_server")
    return {
        "kind": "postgres",
        "state": fresh_pg_database(admin, "ib_state_"),
        "foreign": fresh_pg_database(admin, "ib_foreign_"),
        "managed": fresh_pg_database(admin, "ib_managed_"),
    }


@pytest.fixture
def est(tmp_path: Path, backend: dict[str, str]) -> Iterator[Estate]:
    """The behaviour suite's small foreign estate on that backend, with its icebridge.yaml."""
    from tests.integration.test_behaviour import make_estate

    yield make_estate(tmp_path, backend)
