"""The SQL state store (SQLite by default, PostgreSQL by URL), migrated by Alembic on open."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from icebridge.errors import StateError
from icebridge.store.repository import (
    READ_ONLY,
    CheckpointRow,
    CutoverStepRow,
    EventRow,
    FindingRow,
    RunRow,
    SnapshotMapRow,
    Store,
    TaskRow,
    ValidationRow,
)

__all__ = [
    "CheckpointRow",
    "CutoverStepRow",
    "EventRow",
    "FindingRow",
    "RunRow",
    "SnapshotMapRow",
    "Store",
    "TaskRow",
    "ValidationRow",
    "mask_url",
    "known_revisions",
    "migrations_config",
    "open_store",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10

_FIX = (
    "fix: set 'state:' in icebridge.yaml to a reachable SQLAlchemy URL, "
    "e.g. sqlite:///path/to/state.db or postgresql+psycopg2://user@host:5432/dbname, "
    "and make sure that database server is running"
)
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return _PASSWORD_IN_URL.sub(r"\1***@", url)


def migrations_config(connection: Any = None) -> Any:
    """An Alembic Config for the store's migrations, built in code (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _sqlite_engine(url: URL) -> Engine:
    """A SQLite engine in WAL mode with a busy timeout, whose transactions take the write lock up front."""
    database = url.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in str(url)
    if not memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # WAL with NORMAL sync survives a crash of IceBridge; a power cut may lose the last commits,
                # which resume settles from the destination's own history (the source of truth).
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock at the start so concurrent writers wait (busy_timeout) instead of
        # failing when a read lock cannot be upgraded. A read-only transaction (the store's readers)
        # takes none: in WAL mode it reads a consistent snapshot without waiting for any writer.
        if connection.get_execution_options().get(READ_ONLY) and not memory:
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _engine(url: URL) -> Engine:
    """An engine for the state URL."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if url.drivername == "postgresql":
        # The project ships psycopg2; SQLAlchemy 2.1 would otherwise pick psycopg (v3) for a bare postgresql://.
        url = url.set(drivername="postgresql+psycopg2")
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2":
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(url, **kwargs)


def _reason(exc: BaseException, url: URL | None) -> str:
    """The first line of a driver error, without the password."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if url is not None and url.password:
        line = line.replace(str(url.password), "***")
    return line


def known_revisions() -> list[str]:
    """The schema revisions this IceBridge knows, oldest first (each migration file starts with its id)."""
    return sorted(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))


def _current_revision(engine: Engine) -> str | None:
    """The store's schema revision, or None for an empty database (read without loading Alembic)."""
    with engine.connect() as connection:
        if not engine.dialect.has_table(connection, "alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def _create(engine: Engine, head: str) -> None:
    """A new store: the newest schema at once, stamped with its revision (the same tables the migrations
    build one by one, as a test checks), without loading Alembic."""
    from icebridge.store.models import Base

    with engine.begin() as connection:
        Base.metadata.create_all(connection)
        connection.execute(
            text(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
        )
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head})


def open_store(url: str) -> Store:
    """Open the state store at a SQLAlchemy URL, creating or upgrading its schema to the newest revision.

    A store already at the newest revision opens without loading the migrations at all; a store
    written by a newer IceBridge is refused, never downgraded or touched.
    """
    shown = mask_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StateError(f"state URL {shown} is malformed ({exc}); {_FIX}") from exc
    try:
        engine = _engine(parsed)
    except (SQLAlchemyError, ImportError, OSError) as exc:
        raise StateError(f"cannot use state URL {shown}: {_reason(exc, parsed)}; {_FIX}") from exc
    known = known_revisions()
    try:
        current = _current_revision(engine)
        if current is not None and current not in known:
            engine.dispose()
            raise StateError(
                f"the state store at {shown} was written by a newer IceBridge (schema revision {current}; this "
                f"version knows up to {known[-1]}); upgrade icebridge, or point 'state:' at another store"
            )
        if current is None:
            _create(engine, known[-1])
        elif current != known[-1]:
            from alembic import command

            with engine.begin() as connection:
                command.upgrade(migrations_config(connection), "head")
    except StateError:
        raise
    except Exception as exc:  # any driver, file system or migration error: one message, the store untouched
        engine.dispose()
        raise StateError(f"cannot open the state store at {shown}: {_reason(exc, parsed)}; {_FIX}") from exc
    return Store(engine, shown)
