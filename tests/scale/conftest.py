"""Fixtures of the scale suite: a moto S3 server whose request log the tests read."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.integration.test_s3 import moto_server


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    log: Path

    def client(self, key: str = "testing") -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=key,
            region_name="us-east-1",
        )

    def requests(self) -> list[str]:
        """The requests the server answered so far, e.g. ``GET /bucket/key``."""
        out = []
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))  # werkzeug colours some
        for line in text.splitlines():
            if '"' in line:
                parts = line.split('"')[1].split()
                if len(parts) >= 2:
                    out.append(f"{parts[0]} {parts[1]}")
        return out


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    folder = tmp_path_factory.mktemp("moto")
    # the server logs every request it answers; unbuffered, so a test sees each one at once
    previous = os.environ.get("PYTHONUNBUFFERED")
    os.environ["PYTHONUNBUFFERED"] = "1"
    try:
        server = moto_server(folder)
        endpoint = server.__enter__()
    finally:
        if previous is None:
            os.environ.pop("PYTHONUNBUFFERED")
        else:
            os.environ["PYTHONUNBUFFERED"] = previous
    try:
        yield S3Server(endpoint, folder / "moto.log")
    finally:
        server.__exit__(None, None, None)


# the REST catalog server of the catalogs suite, for the control plane at scale
from tests.catalogs.conftest import rest, rest_server  # noqa: E402, F401
