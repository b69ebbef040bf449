"""Plan: one destination and one strategy per source table, each with a reason. Writes nothing to any catalog."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from icebridge.catalogs import property_problems
from icebridge.engines import ENGINES, Engine, check_engine_settings, engine_for, engine_installed, engine_names
from icebridge.errors import IceBridgeError, PlanError
from icebridge.events import Progress
from icebridge.locations import Place, PlaceIndex
from icebridge.model import Finding, PlanItem, Severity, Strategy, TableFacts, TableRef, Throughput
from icebridge.units import human_bytes
from icebridge.validation.structure import structure_differences

if TYPE_CHECKING:
    from icebridge.config import Config
    from icebridge.context import AppContext


def check_engine(config: Config, engine: str | None) -> None:
    """``--engine NAME`` names an engine of the registry whose settings hold (before anything is written).

    An unknown name is a :class:`PlanError` listing the known ones; a mistake in the engine's section of
    the configuration is the engine's :class:`ConfigError`.
    """
    if engine is None:
        return
    if engine not in ENGINES:
        raise PlanError(f"--engine {engine!r}: unknown engine; choose one of {', '.join(engine_names())}")
    check_engine_settings(engine, config)


def choose_strategy(engines: _Engines, chooser: str, facts: TableFacts, forced: str | None) -> tuple[str, str]:
    """The strategy for one table and the human reason for it: the mapping rule's, else the ``chooser`` engine's."""
    if forced is not None:
        return forced, f"{forced}: forced by the mapping rule"
    engine = engines.get(chooser)
    if isinstance(engine, str):  # its strategy is then blocked, with this reason, by strategy_findings
        return ENGINES[chooser].strategies[0], f"the {chooser} engine could not choose: {engine}"
    return engine.choose_strategy(facts)


def strategy_findings(table: str, facts: TableFacts, strategy: str, engine: Engine | str) -> list[Finding]:
    """What keeps ``strategy`` from carrying the table: its engine cannot run here (``engine`` is then the
    reason), the engine's own findings, and the format versions IceBridge does not handle."""
    out: list[Finding] = []
    if isinstance(engine, str):
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "strategy-unavailable",
                f"strategy {strategy} cannot run here: {engine}",
                "install the engine's extra, fix its settings, or remove 'strategy' from the mapping rule",
            )
        )
    else:
        out.extend(engine.strategy_findings(table, facts, strategy))
    if facts.format_version > 2:
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "format-version",
                f"format version {facts.format_version} is not supported yet",
                "migrate this table with an engine that supports v3",
            )
        )
    if facts.format_version == 1:
        out.append(
            Finding(
                table,
                Severity.INFO,
                "format-upgrade",
                "source is format v1; the destination is created as v2",
                "",
            )
        )
    return out


class _Engines:
    """The engines one plan asks, each built once; an engine that cannot run here is its reason instead."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._built: dict[str, Engine | str] = {}

    def get(self, name: str) -> Engine | str:
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def _build(self, name: str) -> Engine | str:
        if not engine_installed(name):
            extra = ENGINES[name].extra
            hint = f"pip install 'icebridge[{extra}]'" if extra else "reinstall icebridge"
            return f"the {name} engine's packages are not installed ({hint})"
        try:
            return self._ctx.engine(name)
        except IceBridgeError as exc:
            return f"the {name} engine cannot be built: {exc}"


def build(
    ctx: AppContext, facts: list[TableFacts], check_destinations: bool = True, engine: str | None = None
) -> list[PlanItem]:
    """A plan item for every inventoried table that a mapping rule matches.

    ``engine`` chooses the engine for this run, over the mapping rules: a rule's strategy that the
    engine does not carry out is set aside and the engine chooses (``local`` picks file-copy or
    rewrite per table, ``spark`` and ``databricks`` carry every table). Without it a rule's strategy
    stands, and the local engine chooses for the rest.
    """
    check_engine(ctx.config, engine)
    engines = _Engines(ctx)
    items: list[PlanItem] = []
    for fact in sorted(facts, key=lambda f: f.table):
        ref = TableRef.parse(fact.table)
        rule = ctx.config.rule_for(ref)
        if rule is None:
            continue
        destination = rule.destination(ref)
        forced = rule.strategy
        if engine is not None and forced is not None and forced not in ENGINES[engine].strategies:
            forced = None  # the run asked for another engine: it decides
        strategy, reason = choose_strategy(engines, engine or "local", fact, forced)
        if engine is not None:
            reason = f"{reason}; --engine {engine} for this run"
        carrier = engines.get(engine_for(strategy, preferred=engine))
        findings = strategy_findings(fact.table, fact, strategy, carrier)
        moved = fact.data_bytes + fact.delete_bytes if strategy != Strategy.REGISTER else 0  # register moves none
        items.append(PlanItem(ref, destination, strategy, reason, tuple(findings), bytes_to_move=moved))
    items = _mark_collisions(items)
    if check_destinations:
        places = PlaceIndex(source_places(ctx, facts))
        present = _Present(ctx)
        checked = []
        for item in items:
            carrier = engines.get(engine_for(item.strategy, preferred=engine))
            if not isinstance(carrier, str):
                item = item.with_findings(*carrier.destination_findings(item, ctx.catalogs))
            item = _check_catalog_properties(ctx, item)
            item = _check_location(ctx, _check_destination(ctx, item, present), places, present)
            ctx.bus.publish(Progress(phase="plan", table=str(item.source), files=1))
            checked.append(item)
        items = checked
    return items


def _check_catalog_properties(ctx: AppContext, item: PlanItem) -> PlanItem:
    """A blocker for each misspelled property of the catalogs the table is read from or written to."""
    assert item.destination is not None
    findings = [
        Finding(
            str(item.source),
            Severity.BLOCKER,
            "catalog-property",
            f"{ctx.config.path}: catalogs.{name}.{key}: {problem}",
            f"fix the key under catalogs.{name} in {ctx.config.path}",
        )
        for name in dict.fromkeys((item.source.catalog, item.destination.catalog))
        for key, problem in property_problems(ctx.config, name)
    ]
    return item.with_findings(*findings) if findings else item


def source_places(ctx: AppContext, facts: list[TableFacts]) -> list[Place]:
    """Every folder that holds source files: each source table's locations and each source catalog's warehouse."""
    places: list[Place] = []
    for fact in facts:
        places.append(Place(fact.location, f"source table {fact.table}"))
        for key in ("write.data.path", "write.metadata.path"):
            if fact.properties.get(key):
                places.append(Place(fact.properties[key], f"source table {fact.table} ({key})"))
    for name in ctx.config.source_catalogs:
        warehouse = ctx.catalogs.warehouse(name)
        if warehouse:
            places.append(Place(warehouse, f"the warehouse of source catalog {name!r}"))
    return places


class _Present:
    """Which destination namespaces and tables exist, listed once per namespace instead of asked per table
    (a plan of 10,000 tables would otherwise ask the destination catalog four questions per table)."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._namespaces: dict[str, set[tuple[str, ...]] | None] = {}
        self._tables: dict[tuple[str, tuple[str, ...]], set[str] | None] = {}

    def _listed_namespaces(self, catalog: str) -> set[tuple[str, ...]] | None:
        if catalog not in self._namespaces:
            try:
                found: set[tuple[str, ...]] = set()
                pending = [tuple(n) for n in self._ctx.catalogs.get(catalog).list_namespaces()]
                while pending:  # nested namespaces too, as a namespace of any depth may be a target
                    namespace = pending.pop()
                    if namespace in found:
                        continue
                    found.add(namespace)
                    for prefix in range(1, len(namespace)):
                        found.add(namespace[:prefix])
                    try:
                        pending.extend(tuple(c) for c in self._ctx.catalogs.get(catalog).list_namespaces(namespace))
                    except Exception:  # a catalog without nested namespaces
                        pass
                self._namespaces[catalog] = found
            except Exception:  # unknown: ask per table, as without the listing
                self._namespaces[catalog] = None
        return self._namespaces[catalog]

    def namespace_missing(self, ref: TableRef) -> bool:
        """Known not to exist (False when it exists or cannot be told)."""
        listed = self._listed_namespaces(ref.catalog)
        return listed is not None and tuple(ref.namespace) not in listed

    def table_missing(self, ref: TableRef) -> bool:
        """Known not to exist (False when it exists or cannot be told)."""
        if self.namespace_missing(ref):
            return True
        key = (ref.catalog, tuple(ref.namespace))
        if key not in self._tables:
            try:
                listed = self._ctx.catalogs.get(ref.catalog).list_tables(ref.namespace)
                self._tables[key] = {tuple(i)[-1] for i in listed}
            except Exception:
                self._tables[key] = None
        names = self._tables[key]
        return names is not None and ref.name not in names


def _check_location(ctx: AppContext, item: PlanItem, places: PlaceIndex, present: _Present) -> PlanItem:
    """A blocker when the destination's folder is a source's folder, or one holds the other, and when a
    catalog that places tables itself has nowhere to place it."""
    assert item.destination is not None
    dest = item.destination
    location = ctx.catalogs.planned_location(
        dest, namespace_missing=present.namespace_missing(dest), table_missing=present.table_missing(dest)
    )
    if location is None:
        if not ctx.catalogs.places_tables(item.destination.catalog):
            return item  # the catalog's server decides the location; scaffold checks it
        return item.with_findings(
            Finding(
                str(item.source),
                Severity.BLOCKER,
                "no-location",
                f"{item.destination}: catalog {item.destination.catalog!r} has no 'warehouse' and namespace "
                f"{item.destination.namespace_str!r} has no 'location', so the table has nowhere to go",
                f"set catalogs.{item.destination.catalog}.warehouse in {ctx.config.path}",
            )
        )
    clash = places.first_overlap(location)
    if clash is None:
        return item
    return item.with_findings(
        Finding(
            str(item.source),
            Severity.BLOCKER,
            "location-overlap",
            f"{item.destination} would be written at {location}, which overlaps {clash.owner} at {clash.location}; "
            "IceBridge never writes where source files live",
            f"give catalog {item.destination.catalog!r} a 'warehouse' (or the namespace a 'location') "
            "outside every source location",
        )
    )


def unmatched_rules(ctx: AppContext, facts: list[TableFacts], known_sources: list[str]) -> list[str]:
    """Mapping rules that match no source table (neither live nor already migrated): almost always a typo."""
    refs = [TableRef.parse(f.table) for f in facts] + [TableRef.parse(s) for s in known_sources]
    out = []
    for i, rule in enumerate(ctx.config.mappings):
        if not any(rule.matches(r) for r in refs):
            out.append(f"{ctx.config.path}: mappings[{i}].source: {rule.source!r} matches no table")
    return out


def check_rules(ctx: AppContext, facts: list[TableFacts], known_sources: list[str]) -> None:
    """Raise :class:`PlanError` when a mapping rule matches nothing."""
    problems = unmatched_rules(ctx, facts, known_sources)
    if problems:
        raise PlanError(
            "; ".join(problems) + ". Fix the glob (see 'icebridge inventory' for the table names) or remove the rule"
        )


def _mark_collisions(items: list[PlanItem]) -> list[PlanItem]:
    by_destination: dict[str, list[PlanItem]] = defaultdict(list)
    for item in items:
        by_destination[str(item.destination)].append(item)
    out = []
    for item in items:
        others = [str(o.source) for o in by_destination[str(item.destination)] if o is not item]
        if others:
            finding = Finding(
                str(item.source),
                Severity.BLOCKER,
                "destination-collision",
                f"{item.source} and {', '.join(others)} all map to {item.destination}",
                "add a mapping rule with 'rename' so every source gets its own destination",
            )
            item = item.with_findings(finding)
        out.append(item)
    return out


def _check_destination(ctx: AppContext, item: PlanItem, present: _Present) -> PlanItem:
    assert item.destination is not None
    try:
        if present.table_missing(item.destination) or not ctx.catalogs.table_exists(item.destination):
            return item
        existing = ctx.catalogs.load_table(item.destination)
        source = ctx.catalogs.load_table(item.source)
    except IceBridgeError as exc:
        finding = Finding(str(item.source), Severity.BLOCKER, "unreadable", str(exc), "")
        return item.with_findings(finding)
    diffs = structure_differences(
        source.schema(),
        source.spec(),
        source.sort_order(),
        existing.schema(),
        existing.spec(),
        existing.sort_order(),
    )
    if diffs:
        finding = Finding(
            str(item.source),
            Severity.BLOCKER,
            "destination-differs",
            f"{item.destination} exists with a different shape: {'; '.join(diffs[:3])}",
            "drop or rename the destination table, or map this source elsewhere",
        )
    else:
        finding = Finding(
            str(item.source),
            Severity.INFO,
            "destination-exists",
            f"{item.destination} exists with the same shape and will be adopted",
            "",
        )
    return item.with_findings(finding)


# ------------------------------------------------------------------------------------------ estimates

PROBE_BYTES = 64 * 1024 * 1024
MIN_HISTORY_BYTES = 1024 * 1024


def measured_throughput(ctx: AppContext) -> dict[str, Throughput]:
    """Bytes per second of the batches committed earlier on this installation, per strategy."""
    moved: dict[str, tuple[int, float, int]] = {}
    for strategy_name, size, seconds in ctx.store.throughput_samples():
        strategy = Strategy(strategy_name)
        total, elapsed, count = moved.get(strategy, (0, 0.0, 0))
        moved[strategy] = (total + size, elapsed + seconds, count + 1)
    return {
        strategy: Throughput(strategy, total / elapsed, f"{count} batch(es) committed here earlier")
        for strategy, (total, elapsed, count) in moved.items()
        if total >= MIN_HISTORY_BYTES and elapsed > 0
    }


def probe_throughput(ctx: AppContext, items: list[PlanItem]) -> dict[str, Throughput]:
    """Time reading, decoding and re-encoding up to 64 MiB of real source files (nothing is written)."""
    import io
    import time

    import pyarrow.parquet as pq

    candidates = sorted((i for i in items if i.bytes_to_move), key=lambda i: -i.bytes_to_move)
    for item in candidates:
        try:
            table = ctx.catalogs.load_table(item.source)
            files = [t.file for t in table.scan().plan_files() if str(t.file.file_format.value).upper() == "PARQUET"]
        except Exception:  # an unreadable table is reported by preflight; try the next one
            continue
        probed = 0
        read_seconds = rewrite_seconds = 0.0
        for data_file in sorted(files, key=lambda f: -f.file_size_in_bytes)[:32]:
            if data_file.file_size_in_bytes > PROBE_BYTES:
                continue
            started = time.perf_counter()
            with table.io.new_input(data_file.file_path).open() as stream:
                data = stream.read()
            read_seconds += time.perf_counter() - started
            started = time.perf_counter()
            pq.write_table(pq.read_table(io.BytesIO(data)), io.BytesIO())
            rewrite_seconds += time.perf_counter() - started
            probed += len(data)
            if probed >= PROBE_BYTES:
                break
        if not probed:
            continue
        read_seconds = max(read_seconds, 1e-6)
        basis = f"a probe of {human_bytes(probed)} of {item.source} on this machine"
        # file-copy reads and writes each byte once: count the write as long as the read
        return {
            Strategy.FILE_COPY: Throughput(Strategy.FILE_COPY, probed / (2 * read_seconds), basis),
            Strategy.REWRITE: Throughput(Strategy.REWRITE, probed / (2 * read_seconds + rewrite_seconds), basis),
        }
    return {}


def with_estimates(ctx: AppContext, items: list[PlanItem]) -> tuple[list[PlanItem], dict[str, Throughput]]:
    """Each item with its estimated duration, from history when there is some, else from a probe."""
    from dataclasses import replace

    rates = measured_throughput(ctx)
    if any(i.strategy not in rates and i.bytes_to_move for i in items):
        rates = {**probe_throughput(ctx, items), **rates}
    out = []
    for item in items:
        rate = rates.get(item.strategy)
        seconds = item.bytes_to_move / rate.bytes_per_second if rate and rate.bytes_per_second > 0 else None
        out.append(replace(item, estimate_seconds=0.0 if not item.bytes_to_move else seconds))
    return out, rates


def total_estimate(items: list[PlanItem], concurrency: int) -> float | None:
    """Wall-clock estimate for the whole plan: tables run ``concurrency`` at a time."""
    seconds = [i.estimate_seconds for i in items if not i.blocked]
    if any(s is None for s in seconds):
        return None
    known = [s for s in seconds if s is not None]
    if not known:
        return 0.0
    return max(sum(known) / concurrency, max(known))
