"""What plan says of tables with delete files: file-copy carries them, with the reason; rewrite where it cannot."""

from __future__ import annotations

from pathlib import Path

from icebridge.config import load_config
from icebridge.engines.local import LocalEngine
from tests.sync.conftest import make_live
from tests.unit.test_engines import facts


def test_delete_files_are_carried_by_file_copy_and_plan_says_so(tmp_path: Path) -> None:
    engine = LocalEngine(load_config(make_live(tmp_path).config))
    deleted = facts("foreign.shop.deleted", delete_files=3, position_delete_files=2, equality_delete_files=1)
    strategy, reason = engine.choose_strategy(deleted)
    assert strategy == "file-copy"
    assert "2 position delete file(s) re-pointed" in reason and "1 equality delete file(s) copied" in reason
    assert engine.strategy_findings("foreign.shop.deleted", deleted, strategy) == []

    vectors = facts("foreign.shop.v3", format_version=3, delete_files=1, position_delete_files=1)
    strategy, reason = engine.choose_strategy(vectors)
    assert strategy == "rewrite" and "deletion vectors are not carried" in reason
    [blocker] = engine.strategy_findings("foreign.shop.v3", vectors, "file-copy")
    assert blocker.code == "file-copy-unsupported" and "format v3" in blocker.message

    [blocker] = engine.strategy_findings("foreign.shop.deleted", deleted, "rewrite")
    assert blocker.code == "equality-deletes" and "use strategy file-copy" in blocker.fix
