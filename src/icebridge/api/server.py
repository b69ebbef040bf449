"""``icebridge serve``: check the configuration and the auth settings, open the store, listen.

As a Databricks App, the port comes from ``DATABRICKS_APP_PORT`` and — when the configuration names no
``state:`` — the state store from the Lakebase variables the platform sets (``PGHOST``, ``PGPORT``,
``PGDATABASE``, ``PGUSER``, ``PGSSLMODE``); the password is left to the PostgreSQL client library,
which reads ``PGPASSWORD`` from the environment itself, so it is never part of a URL, a log line or an
error. Every log line of the server goes through the configuration's redaction.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Mapping

from icebridge.app.worker import configure_logging
from icebridge.config import API_TOKEN_ENV, MIN_TOKEN_LENGTH, Config, load_config
from icebridge.errors import ConfigError, UsageError

APP_PORT_ENV = "DATABRICKS_APP_PORT"
DEFAULT_PORT = 8000
GRACEFUL_SECONDS = 5  # open event streams are closed after this long when the server stops
# An idle connection is kept longer than clients and proxies keep theirs (httpx and many proxies: 5 s to
# 60 s), so the server never closes one just as a client sends on it (the client would see a reset).
KEEP_ALIVE_SECONDS = 75


def lakebase_url(environ: Mapping[str, str]) -> str | None:
    """The state store's URL from the Lakebase (libpq) variables, without a password; None when unset."""
    from sqlalchemy import URL

    host, database = environ.get("PGHOST"), environ.get("PGDATABASE")
    if not host or not database:
        return None
    port = environ.get("PGPORT")
    if port is not None and not port.isdigit():
        raise ConfigError(f"PGPORT={port!r} is not a port number; set it to the database's port, e.g. 5432")
    query = {"sslmode": environ["PGSSLMODE"]} if environ.get("PGSSLMODE") else {}
    url = URL.create(
        "postgresql+psycopg2",
        username=environ.get("PGUSER") or None,
        host=host,
        port=int(port) if port else None,
        database=database,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def default_port(environ: Mapping[str, str]) -> int:
    """``DATABRICKS_APP_PORT`` when the platform sets it, else 8000."""
    value = environ.get(APP_PORT_ENV)
    if value is None:
        return DEFAULT_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(f"{APP_PORT_ENV}={value!r} is not a port number")
    return int(value)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def service_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Config:
    """The configuration, with the store from Lakebase when it names none and the platform offers one."""
    config = load_config(path)
    if not config.state_configured and (url := lakebase_url(environ)):
        config = dataclasses.replace(config, state_url=url)
    return config


def auth_token(config: Config, host: str, no_auth: bool) -> str | None:
    """The bearer token to require, or None when auth is off (``--no-auth``, loopback only)."""
    if no_auth:
        if not is_loopback(host):
            raise UsageError(
                f"--no-auth is refused on {host}: without auth anyone who reaches that address could start "
                "migrations; bind to 127.0.0.1 or set a token (ICEBRIDGE_API_TOKEN or service.token)"
            )
        return None
    token = config.api_token()
    if token is None:
        raise UsageError(
            f"no API token: set {API_TOKEN_ENV}, or service.token in {config.path} (e.g. service: "
            "{token: ${ICEBRIDGE_TOKEN}}); --no-auth is allowed on a loopback address only"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{API_TOKEN_ENV}: the token is too short ({len(token)} characters); use at least {MIN_TOKEN_LENGTH}"
        )
    return token


def serve(path: str | os.PathLike[str] | None, host: str, port: int | None, no_auth: bool) -> None:
    """Check everything, open the store, then serve until stopped (Ctrl-C or SIGTERM)."""
    import uvicorn

    from icebridge.api.app import create_app
    from icebridge.context import AppContext

    config = service_config(path, os.environ)
    token = auth_token(config, host, no_auth)
    port = port if port is not None else default_port(os.environ)
    ctx = AppContext(config)
    try:
        ctx.store  # noqa: B018 - a store that cannot be opened stops the command before it listens
        configure_logging(config)
        logging.getLogger("icebridge.api").info(
            "state store %s; auth %s", ctx.store.url, "off (loopback only)" if token is None else "bearer token"
        )
        uvicorn.run(
            create_app(ctx, token),
            host=host,
            port=port,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            proxy_headers=False,
        )
    finally:
        ctx.close()
