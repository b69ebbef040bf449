"""Validate: prove the destination holds the source's data, cheapest comparator first, and say what each proved.

The comparators are the registry's (:data:`icebridge.validation.comparators.COMPARATORS`), one module
per level: 1 ``structure``; 2 ``metadata-partitions`` and, for byte copies, ``metadata-files``
(manifests only); 3 ``file-identity`` (byte copies: every file's size and checksum); 4
``content-digest`` (every row read by IceBridge's own readers, digested per partition); 5
``drill-down`` (after a mismatch at levels 2 to 4, the differing rows). This module walks them in
level order and knows no level by name.

Only reads: neither table is changed. A comparator that cannot run raises
:class:`~icebridge.errors.ValidationError` — never a pass. Once an earlier comparator has found a
difference (a failed result, or a verdict waiting for a later level's proof), a comparator that cannot
run is recorded as a failed result instead (a truncated file found at level 3 cannot be decoded at level
4), so the evidence gathered so far is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from icebridge.engines import check_engine_settings, engine_installed, strategy_spec
from icebridge.errors import IceBridgeError, UsageError, ValidationError, ValidationFailedError
from icebridge.events import Progress as ProgressEvent
from icebridge.events import Validated
from icebridge.model import Phase
from icebridge.phases import PhaseResult
from icebridge.validation import comparators
from icebridge.validation.comparators.base import (
    Comparator,
    ComparatorResult,
    Evidence,
    Executors,
    Options,
    Outcome,
    Progress,
    Provisional,
    TablePair,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.engines import EngineConfig
    from icebridge.phases import TableWork

__all__ = ["ENGINES", "ComparatorResult", "check_engine", "compare", "levels_to_run", "planned_work", "run"]

# where a validation can run: "local" on this process's threads, "spark" on the spark engine's executors
ENGINES = ("local", "spark")


def _registry() -> list[Comparator]:
    """The registered comparators in walking order: by level, those of one level as registered."""
    chain = sorted(comparators.COMPARATORS, key=lambda c: c.level)
    names = [c.name for c in chain]
    if len(names) != len(set(names)):
        raise ValueError(f"comparator names must be unique, got {names}")
    return chain


def levels_to_run(
    *, byte_copy: bool, default_levels: Sequence[int], levels: Sequence[int] | None = None
) -> tuple[int, ...]:
    """The levels to run for a copy of this kind and an optional request.

    ``levels=None`` gives ``default_levels`` (a strategy's ``StrategySpec.validation_levels``).
    Otherwise the request means "up to and including ``max(levels)``" (``icebridge validate --level N``
    passes ``[N]``): every level from 1 to N with a comparator that fits the copy (level 3 fits byte
    copies only). Follow-up levels (drill-down) are never listed: they run after a mismatch.

    Raises:
        ValueError: a requested level is not a registered comparator's level.
    """
    if levels is None:
        return tuple(default_levels)
    chain = _registry()
    top_level = max(c.level for c in chain)
    if not levels or any(not 1 <= int(n) <= top_level for n in levels):
        raise ValueError(f"validation levels must be between 1 and {top_level}, got {list(levels)}")
    top = max(int(n) for n in levels)
    return tuple(sorted({c.level for c in chain if c.level <= top and not c.follow_up and c.applies(byte_copy)}))


def planned_work(
    source: Table,
    source_snapshot_id: int | None,
    destination: Table,
    *,
    byte_copy: bool,
    default_levels: Sequence[int],
    levels: Sequence[int] | None = None,
) -> tuple[int, int]:
    """(files, bytes) that :func:`run` with the same arguments reads, from the manifests alone.

    It is the work of a validation in which nothing differs: a mismatch adds what it sets off (level 4
    after a byte copy's file that differs, the drill-down), so a progress bar may pass this total.

    Raises:
        ValidationError: a snapshot, manifest list or manifest cannot be read.
    """
    options = Options(
        byte_copy=byte_copy,
        levels=levels_to_run(byte_copy=byte_copy, default_levels=default_levels, levels=levels),
    )
    pair = TablePair.open(source, source_snapshot_id, destination)
    nothing_found = Evidence()
    files = size = 0
    for comparator in _registry():
        if comparator.applies(byte_copy) and comparator.wanted(options, nothing_found):
            f, b = comparator.planned(pair, options)
            files, size = files + f, size + b
    return files, size


def compare(
    source: Table,
    source_snapshot_id: int | None,
    destination: Table,
    *,
    byte_copy: bool,
    default_levels: Sequence[int],
    levels: Sequence[int] | None = None,
    sample_rows: int = 20,
    file_mapping: Mapping[str, str] | None = None,
    workers: int = 2,
    digest_reader: str = "auto",
    progress: Progress | None = None,
    executors: Executors | None = None,
) -> list[ComparatorResult]:
    """Run the registered comparators that fit the copy, cheapest first; only reads.

    ``source_snapshot_id`` is the pinned source snapshot (None: the source was empty when pinned); the
    destination is compared at its current snapshot. ``byte_copy`` and ``default_levels`` describe the
    copy (``icebridge.engines.strategy_spec(name)`` gives both); ``levels=[N]`` runs every fitting
    level up to and including N instead (see :func:`levels_to_run`). Drill-down follows any mismatch
    at levels 2-4 unless ``sample_rows`` is 0. ``file_mapping`` (source path -> destination path)
    pairs files for the byte-copy comparators; without it they pair by base name. ``workers`` threads
    read files in parallel. ``progress`` receives (files, bytes) increments as data is read, from
    worker threads too; :func:`planned_work` gives the total up front. With ``executors`` (a Spark
    cluster's, ``validation.spark_exec.SparkExecutors``) levels 3 and 4 read the files there, with the same
    code, and only the per-file results come back (progress is then told as each level's job ends).

    Returns the results in level order (comparators of one level in registry order).

    Raises:
        ValidationError: a comparator cannot run (a table vanished, a manifest or file unreadable) and no
            earlier comparator had found a difference.
    """
    options = Options(
        byte_copy=byte_copy,
        levels=levels_to_run(byte_copy=byte_copy, default_levels=default_levels, levels=levels),
        sample_rows=sample_rows,
        file_mapping=file_mapping,
        workers=workers,
        digest_reader=digest_reader,
        progress=progress,
        executors=executors,
    )
    pair = TablePair.open(source, source_snapshot_id, destination)
    chain = _registry()
    evidence = Evidence()
    for comparator in chain:
        # a verdict waiting for a level below this one has all it waits for
        _settle(chain, evidence, before=comparator.level)
        if comparator.applies(byte_copy) and comparator.wanted(options, evidence):
            step = functools.partial(comparator.run, pair, options, evidence)
            evidence.record(comparator, _attempt(comparator, evidence, step))
    _settle(chain, evidence, before=None)
    by_name = {r.comparator: r for r in evidence.results()}
    return [by_name[c.name] for c in chain if c.name in by_name]


def _settle(chain: list[Comparator], evidence: Evidence, before: int | None) -> None:
    """Make final the provisional verdicts waiting for a level below ``before`` (every one without it)."""
    named = {c.name: c for c in chain}
    for name, provisional in evidence.pending(before):
        comparator = named[name]
        evidence.record(comparator, _attempt(comparator, evidence, functools.partial(provisional.settle, evidence)))


def _attempt(
    comparator: Comparator, evidence: Evidence, step: Callable[[], Outcome | Provisional]
) -> Outcome | Provisional:
    """``step``'s outcome; when it cannot run after a difference was found, a failed result that says why."""
    try:
        return step()
    except Exception as exc:
        error = exc if isinstance(exc, IceBridgeError) else ValidationError(f"{comparator.name} could not run: {exc}")
        if evidence.differs():
            failed = comparator.result(False, f"could not run: {error}", "", error=str(error))
            return Outcome(failed, completed=False)
        if error is exc:
            raise
        raise error from exc


def check_engine(engine: str | None, config: EngineConfig | None = None) -> None:
    """Where a validation is asked to run (``--engine``) is one of :data:`ENGINES`, installed here, and its
    settings hold (with ``config``): else a :class:`~icebridge.errors.UsageError`, or the engine's
    :class:`~icebridge.errors.ConfigError`, before anything runs."""
    if engine is None or engine == "local":
        return
    if engine not in ENGINES:
        raise UsageError(
            f"--engine {engine}: validation runs on {' or '.join(ENGINES)} (spark: levels 3 and 4 on its executors)"
        )
    if not engine_installed(engine):
        raise UsageError(
            f"--engine {engine}: the {engine} engine is not installed here: pip install 'icebridge[{engine}]'"
        )
    if config is not None:
        check_engine_settings(engine, config)


def _executors(work: TableWork) -> Executors | None:
    """The Spark engine's executors when the run asked for the spark engine (``--engine spark``), else None:
    levels 3 and 4 then read the files on this process's threads."""
    if work.scope.engine != "spark":
        return None
    executors: Executors | None = work.app.engine("spark").validation_executors()  # type: ignore[attr-defined]
    return executors


def run(work: TableWork, *, final: bool = False) -> PhaseResult:
    """The per-table phase: validate the destination against the pinned source snapshot with the levels
    of the task's strategy (or up to ``work.level``), store every comparator's result, and fail the
    table on any mismatch. ``final`` marks the validation a cut-over makes just before it archives.
    With the run's engine ``spark`` (``--engine spark``), levels 3 and 4 run on its executors."""
    source, destination = work.require_source(), work.require_destination()
    destination.refresh()
    spec = strategy_spec(work.task.strategy)
    byte_copy, default_levels = spec.byte_copy, spec.validation_levels
    levels = [work.level] if work.level else None
    files, size = planned_work(
        source,
        work.task.source_snapshot_id,
        destination,
        byte_copy=byte_copy,
        default_levels=default_levels,
        levels=levels,
    )
    work.advance(Phase.CUTOVER if final else Phase.VALIDATE, files_total=files, bytes_total=size)
    phase = str(Phase.VALIDATE)
    results = compare(
        source,
        work.task.source_snapshot_id,
        destination,
        levels=levels,
        workers=work.config.migrate.validation_threads(),
        progress=lambda f, b: work.publish(ProgressEvent(phase=phase, files=f, bytes=b)),
        byte_copy=byte_copy,
        default_levels=default_levels,
        executors=_executors(work),
    )
    for r in results:
        details = {"summary": r.summary, **r.details}
        if final:
            details["final"] = True
        work.store.record_validation(work.task.id, work.scope.run_id, r.level, r.comparator, r.passed, details)
        work.publish(Validated(level=r.level, comparator=r.comparator, passed=r.passed, summary=r.summary))
    failures = "; ".join(f"level {r.level} {r.comparator}: {r.summary}" for r in results if not r.passed)
    if failures:
        what = "final validation failed" if final else "validation failed"
        raise ValidationFailedError(f"{work.task.source}: {what}: {failures}")
    proved = sorted({r.level for r in results if r.passed})
    return PhaseResult(Phase.VALIDATE, f"levels {', '.join(map(str, proved))} passed")


def final(work: TableWork) -> PhaseResult:
    """The validation a cut-over makes just before it archives the source."""
    return run(work, final=True)
