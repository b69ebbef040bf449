"""Fixtures of the scale suite: a moto S3 server whose request log the tests read."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyiceberg.io import FileIO

from icebridge.store import open_store
from icebridge.validation.identity import IdentityReport, compare_files, match_files
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


@dataclass(frozen=True)
class FileEntry:
    """The fields of a manifest entry level 3 uses."""

    file_path: str
    file_size_in_bytes: int
    content: str = "DATA"


def identity_of(source_io: FileIO, destination_io: FileIO, pairs: list[tuple[str, str, int]]) -> IdentityReport:
    """Level 3 of ``(source, destination, size in the manifest)`` pairs."""
    match = match_files(
        [FileEntry(s, n) for s, _d, n in pairs],  # type: ignore[misc]
        [FileEntry(d, n) for _s, d, n in pairs],  # type: ignore[misc]
        mapping={s: d for s, d, _n in pairs},
    )
    return compare_files(source_io, destination_io, match)


def file_identity_details(state_url: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The level-3 results of every byte-copied table in a state store, and the strategies of its tasks."""
    store = open_store(state_url)
    try:
        tasks = store.list_tasks()
        details = [
            v.details
            for task in tasks
            if task.strategy == "file-copy"
            for v in store.validations(task.id)
            if v.comparator == "file-identity"
        ]
        return details, {t.strategy for t in tasks}
    finally:
        store.close()


# the REST catalog server of the catalogs suite, for the control plane at scale
from tests.catalogs.conftest import rest, rest_server  # noqa: E402, F401
