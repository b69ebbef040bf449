"""What a comparator is, what it returns, and the evidence the comparators of one validation share.

A comparator checks one thing of a destination against its source, at one level (1 structure, 2
metadata, 3 file identity, 4 content digest, 5 drill-down). It declares:

* ``level``, ``level_name`` and ``name`` — stored with its result;
* :meth:`Comparator.applies` — whether it fits a copy of this kind (file identity: byte copies only);
* :meth:`Comparator.wanted` — whether to run now, from the levels asked for and the evidence so far
  (the content digest also runs when a byte copy's file differs; drill-down after any mismatch);
* :meth:`Comparator.planned` — the files and bytes it will read when nothing differs, from the manifests;
* :meth:`Comparator.run` — the comparison itself: an :class:`Outcome`, or a :class:`Provisional` verdict
  that a later level decides (a byte copy's differing file passes level 3 when level 4 proves its rows).

:func:`icebridge.phases.validate.run` walks the registry (:data:`icebridge.validation.comparators.COMPARATORS`)
in level order and keeps the :class:`Evidence`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from icebridge.errors import IceBridgeError, ValidationError
from icebridge.validation.partitions import WHOLE_TABLE
from icebridge.validation.reader import SnapshotFiles

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyiceberg.io import FileIO
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from icebridge.validation.digest import FileDigest
    from icebridge.validation.identity import FileCheck
    from icebridge.validation.spark_exec import Side

__all__ = [
    "MAX_LISTED",
    "Comparator",
    "ComparatorResult",
    "Evidence",
    "Executors",
    "Options",
    "Outcome",
    "Progress",
    "Provisional",
    "TablePair",
]

MAX_LISTED = 200  # files/partitions listed in one result's details (counts are always complete)

Progress = Callable[[int, int], None]
"""Receives (files, bytes) increments as validation reads data; may be called from worker threads."""


@dataclass(frozen=True)
class ComparatorResult:
    """What one comparator proved (or disproved), stored as a validation row.

    ``details`` is JSON-serialisable and self-contained (it repeats ``proves``), so a report can be
    rendered from stored rows alone.
    """

    level: int
    comparator: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    proves: str = ""


@dataclass(frozen=True)
class TablePair:
    """The two tables compared: the source at its pinned snapshot, the destination at its current one.

    Both sides are read and partitioned with the source's current ``schema`` and ``spec``.
    """

    source: Table
    destination: Table
    source_files: SnapshotFiles
    destination_files: SnapshotFiles
    schema: Schema
    spec: PartitionSpec

    @classmethod
    def open(cls, source: Table, source_snapshot_id: int | None, destination: Table) -> TablePair:
        """List both sides' live files from their manifests (no data file is opened).

        ``source_snapshot_id=None`` means the source was empty when its snapshot was pinned: it is
        compared as a table without files.

        Raises:
            ValidationError: a snapshot, manifest list or manifest cannot be read.
        """
        try:
            src = SnapshotFiles(source, source_snapshot_id)
            if source_snapshot_id is None:
                src.snapshot = None
                src.tasks = []
            dst = SnapshotFiles(destination, None)
        except IceBridgeError:
            raise
        except Exception as exc:
            raise ValidationError(f"validation could not read the tables' metadata: {exc}") from exc
        return cls(source, destination, src, dst, source.schema(), source.spec())


class Executors(Protocol):
    """Somewhere else than this process that runs the per-file work of levels 3 and 4 with the same code
    (``validation.spark_exec.SparkExecutors``: a Spark cluster's executors). Each call also says where the
    work ran, recorded in the level's result as ``executed_on``."""

    def check_files(
        self,
        source_io: FileIO,
        destination_io: FileIO,
        pairs: Sequence[tuple[DataFile, DataFile]],
        chunk_bytes: int,
        store_checksums: bool = True,
    ) -> tuple[list[FileCheck], dict[str, Any]]:
        """Level 3's ``identity.check_pair`` of every pair."""
        ...

    def digest_files(
        self, sides: Sequence[Side], schema: Schema, spec: PartitionSpec, reader: str, batch_rows: int = 131072
    ) -> tuple[list[tuple[list[FileDigest], int]], dict[str, Any]]:
        """Level 4's ``digest.file_digests`` of every data file of each side."""
        ...


@dataclass(frozen=True)
class Options:
    """How one validation runs: the copy's kind, the levels to run, and the knobs of the levels that read data."""

    byte_copy: bool  # files reached the destination byte for byte
    levels: tuple[int, ...]  # see icebridge.phases.validate.levels_to_run
    sample_rows: int = 20  # rows sampled per side by the drill-down; 0: no drill-down
    file_mapping: Mapping[str, str] | None = None  # source path -> destination path (else paired by base name)
    workers: int = 2  # threads reading files
    digest_reader: str = "auto"  # "auto": DuckDB's Parquet scan where it can; "arrow": IceBridge's reader only
    progress: Progress | None = None
    executors: Executors | None = None  # levels 3 and 4 run there instead of on this process's threads


@dataclass(frozen=True)
class Outcome:
    """A comparator's final word: its result and the partitions it found wrong."""

    result: ComparatorResult
    suspects: frozenset[str] = frozenset()  # partition labels for the drill-down to look into
    # every row was placed in its current partition (level 4), so a table-wide group needs no drill-down
    locates_rows: bool = False
    completed: bool = True  # False: the comparator could not run and ``result`` says why


@dataclass(frozen=True)
class Provisional:
    """A verdict that waits for the comparators of level ``until``: ``settle`` makes it final from their evidence."""

    until: int
    settle: Callable[[Evidence], Outcome]


class Evidence:
    """What the comparators of one validation found so far, by comparator name."""

    def __init__(self) -> None:
        self._final: dict[str, tuple[int, Outcome]] = {}
        self._pending: dict[str, Provisional] = {}

    def record(self, comparator: Comparator, outcome: Outcome | Provisional) -> None:
        """Keep a comparator's outcome; a final one replaces the provisional verdict it settles."""
        if isinstance(outcome, Provisional):
            self._pending[comparator.name] = outcome
        else:
            self._pending.pop(comparator.name, None)
            self._final[comparator.name] = (comparator.level, outcome)

    def pending(self, before: int | None = None) -> list[tuple[str, Provisional]]:
        """Provisional verdicts waiting for a level below ``before`` (all of them without it)."""
        return [(n, p) for n, p in self._pending.items() if before is None or p.until < before]

    def results(self) -> list[ComparatorResult]:
        """Every final result so far, in the order they were recorded."""
        return [outcome.result for _, outcome in self._final.values()]

    def level_verdict(self, level: int) -> bool | None:
        """Whether every comparator of ``level`` that ran to completion passed; None when none did."""
        verdicts = [o.result.passed for lvl, o in self._final.values() if lvl == level and o.completed]
        return all(verdicts) if verdicts else None

    def differs(self) -> bool:
        """Some result failed, or a provisional verdict waits for proof that a difference is harmless."""
        return bool(self._pending) or any(not r.passed for r in self.results())

    def awaits(self, level: int) -> bool:
        """A provisional verdict waits for the comparators of ``level``."""
        return any(p.until == level for p in self._pending.values())

    def suspects(self) -> set[str]:
        """The partitions found wrong so far (without the table-wide group once rows were located)."""
        found: set[str] = set()
        for _, outcome in self._final.values():
            found |= outcome.suspects
        if any(o.locates_rows and o.completed for _, o in self._final.values()):
            found.discard(WHOLE_TABLE)
        return found


class Comparator(ABC):
    """One named check at one level; subclasses set the attributes and implement :meth:`run`.

    The defaults fit a comparator that runs whenever its level is among the levels to run, for every
    kind of copy, and reads no data file.
    """

    level: int
    level_name: str
    name: str
    # True: runs only in answer to earlier findings (drill-down), never because its level was asked for
    follow_up: bool = False

    def applies(self, byte_copy: bool) -> bool:
        """Whether this comparator fits a copy of this kind."""
        return True

    def wanted(self, options: Options, evidence: Evidence) -> bool:
        """Whether to run now, given the levels to run and what earlier comparators found."""
        return self.level in options.levels

    def planned(self, pair: TablePair, options: Options) -> tuple[int, int]:
        """(files, bytes) of data this comparator reads when nothing differs, from the manifests alone."""
        return 0, 0

    @abstractmethod
    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome | Provisional:
        """Compare the pair; raise :class:`~icebridge.errors.ValidationError` when the comparison cannot run."""

    def result(self, passed: bool, summary: str, proves: str, **details: Any) -> ComparatorResult:
        """This comparator's result: ``details`` gets the level's name and, when passed, what it proves."""
        body = {"level_name": self.level_name, "proves": proves if passed else "", **details}
        return ComparatorResult(self.level, self.name, passed, summary, body, proves if passed else "")
