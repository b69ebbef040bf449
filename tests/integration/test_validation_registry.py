"""The comparator registry is the extension point: a comparator registered here runs in its level's place."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.table import Table

from icebridge.errors import ValidationError
from icebridge.phases.validate import ComparatorResult, compare, levels_to_run
from icebridge.validation import comparators
from icebridge.validation.comparators.base import Comparator, Evidence, Options, Outcome, Provisional, TablePair
from icebridge.validation.partitions import WHOLE_TABLE, file_label
from icebridge.validation.reader import SnapshotFiles
from icebridge.validation.report import TableValidation, render_html
from tests.integration.validation_fixtures import (
    base_rows,
    changed,
    label_of,
    make_byte_copy,
    make_destination,
    make_source,
    traits,
)

ROWS = base_rows()


class StringValues(Comparator):
    """Level 3 for rewrites: the values of column ``s`` per partition, read from the data files."""

    level = 3
    level_name = "string values"
    name = "string-values"

    def applies(self, byte_copy: bool) -> bool:
        return not byte_copy

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        def values(files: SnapshotFiles) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for task in files.tasks:
                label = file_label(files.metadata, task.data_file) or WHOLE_TABLE
                for batch in files.read(task, pair.schema):
                    out.setdefault(label, []).extend(repr(v) for v in batch.column("s").to_pylist())
            return {label: sorted(v) for label, v in out.items()}

        s, d = values(pair.source_files), values(pair.destination_files)
        bad = sorted(label for label in s.keys() | d.keys() if s.get(label) != d.get(label))
        summary = f"column s differs in {len(bad)} partition(s)" if bad else f"column s equal in {len(s)} partitions"
        seen = [r.comparator for r in evidence.results()]
        return Outcome(
            self.result(not bad, summary, "column s holds the same values", partitions=bad, seen_before=seen),
            frozenset(bad),
        )


class WaitsForLevel4(Comparator):
    """Level 2, provisional: its verdict is whatever level 4 finds."""

    level = 2
    level_name = "metadata"
    name = "waits-for-level-4"

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Provisional:
        def settle(later: Evidence) -> Outcome:
            verdict = later.level_verdict(4)
            return Outcome(self.result(verdict is True, f"level 4 said {verdict}", "level 4 proved the rows"))

        return Provisional(4, settle)


class Broken(Comparator):
    """Level 3: cannot run."""

    level = 3
    level_name = "broken"
    name = "broken"

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        raise RuntimeError("the disk went away")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Table:
    return make_source(tmp_path_factory.mktemp("source"))


def register(monkeypatch: pytest.MonkeyPatch, comparator: Comparator) -> None:
    """One registry line: the comparator is listed last, whatever its level."""
    monkeypatch.setattr(comparators, "COMPARATORS", (*comparators.COMPARATORS, comparator))


def pinned(table: Table) -> int:
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


def levels_of(results: list[ComparatorResult]) -> list[tuple[int, str, bool]]:
    return [(r.level, r.comparator, r.passed) for r in results]


def test_a_registered_comparator_runs_in_level_order_and_its_level_can_be_asked_for(
    source: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite = traits("rewrite")
    assert levels_to_run(**rewrite, levels=[3]) == (1, 2)
    register(monkeypatch, StringValues())
    assert levels_to_run(**rewrite, levels=[3]) == (1, 2, 3)
    destination = make_destination(tmp_path / "good", split=2)

    results = compare(source, pinned(source), destination, **rewrite, levels=[4])
    assert levels_of(results) == [
        (1, "structure", True),
        (2, "metadata-partitions", True),
        (3, "string-values", True),
        (4, "content-digest", True),
    ]
    mine = results[2]
    assert mine.summary == "column s equal in 6 partitions"
    assert mine.proves == "column s holds the same values"
    assert mine.details["level_name"] == "string values"
    assert mine.details["seen_before"] == ["structure", "metadata-partitions"]
    # the report names the level as the comparator does, and shows what it proved
    page = render_html({"run": 1}, [TableValidation.from_rows("src.ns.t", "dst.ns.t", results, "rewrite")])
    assert "1 structure, 2 metadata, 3 string values, 4 content digest" in page
    assert "column s holds the same values" in page

    # the strategy's own levels (1, 2, 4) leave level 3 out, and a byte copy is not what it applies to
    assert "string-values" not in {r.comparator for r in compare(source, pinned(source), destination, **rewrite)}
    copied = make_byte_copy(tmp_path / "copy", source)
    byte_copy = compare(source, pinned(source), copied, **traits("file-copy"), levels=[4])
    assert "string-values" not in {r.comparator for r in byte_copy}


def test_a_registered_comparator_s_suspects_lead_the_drill_down(
    source: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch, StringValues())
    destination = make_destination(tmp_path, changed(ROWS, 3, s="changed"))
    results = compare(source, pinned(source), destination, **traits("rewrite"), levels=[3])
    # the manifests cannot see a changed string in a rewrite; the registered comparator does, and drill-down follows
    assert levels_of(results) == [
        (1, "structure", True),
        (2, "metadata-partitions", True),
        (3, "string-values", False),
        (5, "drill-down", False),
    ]
    drill = results[-1].details
    assert drill["suspects"] == [label_of(ROWS[3])]
    [pair] = drill["changed"]
    assert pair["columns"] == ["s"] and pair["source"] == {"s": "name-3"} and pair["destination"] == {"s": "changed"}


def test_a_provisional_verdict_makes_the_level_it_waits_for_run(
    source: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch, WaitsForLevel4())
    copied = make_byte_copy(tmp_path, source)
    # a byte copy's own levels are 1, 2 and 3; the waiting verdict brings level 4 in, and is settled by it
    results = compare(source, pinned(source), copied, **traits("file-copy"))
    assert levels_of(results) == [
        (1, "structure", True),
        (2, "metadata-partitions", True),
        (2, "metadata-files", True),
        (2, "waits-for-level-4", True),
        (3, "file-identity", True),
        (4, "content-digest", True),
    ]
    assert results[3].summary == "level 4 said True"


def test_a_registered_comparator_that_cannot_run_is_an_error_or_recorded_after_a_difference(
    source: Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch, Broken())
    good = make_destination(tmp_path / "good")
    with pytest.raises(ValidationError, match="broken could not run: the disk went away"):
        compare(source, pinned(source), good, **traits("rewrite"), levels=[3])
    # once level 2 found a difference, the evidence is kept and the failure recorded instead
    bad = make_destination(tmp_path / "bad", [r for r in ROWS if r["id"] != 2])
    results = compare(source, pinned(source), bad, **traits("rewrite"), levels=[3])
    assert levels_of(results) == [
        (1, "structure", True),
        (2, "metadata-partitions", False),
        (3, "broken", False),
        (5, "drill-down", False),
    ]
    assert results[2].summary == "could not run: broken could not run: the disk went away"
    assert results[2].details["error"] == "broken could not run: the disk went away"
