"""Which way each byte-copied file went: a ``file-copied`` event per file in the run's event log, and the run's
summary (``status --json``) counting files by way — kernel or user space on local disk, server-side on S3."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from icebridge.store import open_store
from tests.integration.test_behaviour import Estate, make_estate
from tests.scale.conftest import S3Server


def _byte_copied_files(est: Estate) -> set[str]:
    """The data files of the source tables the plan gave file-copy (as they end up in the destination)."""
    catalog = est.managed()
    out: set[str] = set()
    for task in est.tasks().values():
        if task.strategy != "file-copy":  # type: ignore[attr-defined]
            continue
        ident = tuple(task.destination.split(".")[1:])  # type: ignore[attr-defined]
        out |= {t.file.file_path for t in catalog.load_table(ident).scan().plan_files()}
    return out


def _migrated(est: Estate) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Migrate; the last run's files by way (``status --json``) and its ``file-copied`` events."""
    code, report = est.cli_json("migrate")
    assert code == 0, report
    code, status = est.cli_json("status")
    assert code == 0, status
    run = next(r for r in status["runs"] if r["kind"] == "migrate")
    store = open_store(est.state_url)
    try:
        events = [e.data for e in store.events(run_id=run["id"], limit=100_000, kinds=["file-copied"])]
    finally:
        store.close()
    return run["summary"].get("files_by_way", {}), events


def test_local_copies_go_through_the_kernel(tmp_path: Path) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    by_way, events = _migrated(est)
    copied = _byte_copied_files(est)
    assert copied, "the estate has byte-copied tables"
    assert by_way == {"kernel": len(copied)}
    assert {e["path"] for e in events} == copied and {e["way"] for e in events} == {"kernel"}
    assert all(e["bytes"] == os.path.getsize(e["path"].removeprefix("file://")) for e in events)


def test_where_the_kernel_refuses_the_bytes_go_through_user_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device copy refused")

    monkeypatch.setattr(os, "copy_file_range", refused)
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    by_way, events = _migrated(est)
    copied = _byte_copied_files(est)
    assert by_way == {"user-space": len(copied)} and {e["path"] for e in events} == copied


def test_s3_copies_are_server_side(s3: S3Server, tmp_path: Path) -> None:
    from tests.integration.test_s3 import make_s3_estate, s3_catalog

    s3.client().create_bucket(Bucket="ways-foreign")  # type: ignore[attr-defined]
    s3.client().create_bucket(Bucket="ways-managed")  # type: ignore[attr-defined]
    foreign = s3_catalog(tmp_path, "foreign", s3.endpoint, "ways-foreign")
    managed = s3_catalog(tmp_path, "managed", s3.endpoint, "ways-managed")
    est = make_s3_estate(tmp_path, foreign, managed)
    by_way, events = _migrated(est)
    copied = _byte_copied_files(est)
    assert copied and all(path.startswith("s3://ways-managed/") for path in copied)
    assert by_way == {"server-side": len(copied)}
    assert {e["path"] for e in events} == copied and {e["way"] for e in events} == {"server-side"}


def test_s3_with_other_credentials_streams(s3: S3Server, tmp_path: Path) -> None:
    from tests.integration.test_s3 import make_s3_estate, s3_catalog

    s3.client().create_bucket(Bucket="ways-foreign-2")  # type: ignore[attr-defined]
    s3.client("other").create_bucket(Bucket="ways-managed-2")  # type: ignore[attr-defined]
    foreign = s3_catalog(tmp_path, "foreign", s3.endpoint, "ways-foreign-2")
    managed = {**s3_catalog(tmp_path, "managed", s3.endpoint, "ways-managed-2"), "s3.access-key-id": "other"}
    managed["s3.secret-access-key"] = "other"
    est = make_s3_estate(tmp_path, foreign, managed)
    by_way, events = _migrated(est)
    copied = _byte_copied_files(est)
    assert copied and by_way == {"arrow": len(copied)}
    assert {e["way"] for e in events} == {"arrow"}
