"""The service's settings: the ``service:`` section, the token, loopback-only --no-auth, Lakebase, the port."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from icebridge.api.server import auth_token, default_port, is_loopback, lakebase_url, service_config
from icebridge.config import load_config
from icebridge.errors import ConfigError, UsageError

BASE = {
    "catalogs": {
        "foreign": {"type": "sql", "uri": "sqlite:///f.db"},
        "managed": {"type": "sql", "uri": "sqlite:///m.db"},
    },
    "mappings": [{"source": "foreign.*.*", "target": "managed.{namespace}"}],
}


def write(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "icebridge.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    return path


def test_the_service_section_is_checked_like_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"service\.tokn: unknown key; allowed keys here: .*token"):
        load_config(write(tmp_path, service={"tokn": "x"}))
    with pytest.raises(ConfigError, match=r"service\.token: the token is too short"):
        load_config(write(tmp_path, service={"token": "short"}))
    with pytest.raises(ConfigError, match=r"service\.cors_origins.*is not an origin"):
        load_config(write(tmp_path, service={"cors_origins": ["ui.example.com/path"]}))
    monkeypatch.setenv("SERVICE_TOKEN", "from-the-environment-0123")
    config = load_config(write(tmp_path, service={"token": "${SERVICE_TOKEN}", "workers": 3}))
    assert config.service.token == "from-the-environment-0123" and config.service.workers == 3
    assert config.api_token() == "from-the-environment-0123"
    assert "from-the-environment-0123" not in config.redact("token from-the-environment-0123 here")
    monkeypatch.setenv("ICEBRIDGE_API_TOKEN", "the-variable-wins-0123456")
    assert config.api_token() == "the-variable-wins-0123456"


def test_auth_is_off_only_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ICEBRIDGE_API_TOKEN", raising=False)
    config = load_config(write(tmp_path))
    assert auth_token(config, "127.0.0.1", no_auth=True) is None
    assert auth_token(config, "::1", no_auth=True) is None
    with pytest.raises(UsageError, match="--no-auth is refused on 0.0.0.0"):
        auth_token(config, "0.0.0.0", no_auth=True)
    with pytest.raises(UsageError, match="no API token"):
        auth_token(config, "127.0.0.1", no_auth=False)
    assert [is_loopback(h) for h in ("localhost", "127.0.0.2", "[::1]", "10.0.0.1", "example.com")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_the_store_comes_from_lakebase_when_the_configuration_names_none(tmp_path: Path) -> None:
    env = {
        "PGHOST": "instance.database.example",
        "PGPORT": "5432",
        "PGDATABASE": "icebridge",
        "PGUSER": "app-sp",
        "PGSSLMODE": "require",
        "PGPASSWORD": "oauth-token-value",
    }
    url = lakebase_url(env)
    assert url == "postgresql+psycopg2://app-sp@instance.database.example:5432/icebridge?sslmode=require"
    assert "oauth-token-value" not in (url or "")  # left to the client library, which reads PGPASSWORD itself
    assert lakebase_url({"PGHOST": "h"}) is None
    with pytest.raises(ConfigError, match="PGPORT"):
        lakebase_url({**env, "PGPORT": "x"})
    assert service_config(write(tmp_path), env).state_url == url
    explicit = write(tmp_path, state="sqlite:///state.db")
    assert service_config(explicit, env).state_url.startswith("sqlite:///")  # an explicit state: wins
    assert default_port({"DATABRICKS_APP_PORT": "8123"}) == 8123 and default_port({}) == 8000
    with pytest.raises(UsageError):
        default_port({"DATABRICKS_APP_PORT": "http"})


def test_the_other_commands_never_import_the_service(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.api.conftest import SRC

    config = write(tmp_path)
    probe = (
        "import sys\n"
        "from icebridge.cli import app\n"
        "try:\n"
        f"    app(['status', '-c', {str(config)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'prometheus_client') if m in sys.modules)\n"
        "print('LOADED', loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(SRC)}
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
