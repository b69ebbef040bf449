"""The ``icebridge`` command: each command builds the context, calls one service and renders the result."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from icebridge import __version__
from icebridge.config import load_config
from icebridge.context import Context
from icebridge.engines import engine_names
from icebridge.errors import CatalogUnreachableError, ConfigError, IceBridgeError, PlanError, StateError
from icebridge.model import Finding, PlanItem, Severity, TableFacts

app = typer.Typer(
    help="Migrate foreign Apache Iceberg tables into managed Iceberg tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console(stderr: bool = False) -> Console:
    """A console; when the output is a file or a pipe, wide enough that tables do not wrap."""
    plain = Console(stderr=stderr)
    if plain.is_terminal or "COLUMNS" in os.environ:
        return plain
    return Console(stderr=stderr, width=200)


console = _console()
err_console = _console(stderr=True)

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: $ICEBRIDGE_CONFIG, then ./icebridge.yaml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help=f"Engine for this run, over the mapping rules: {', '.join(engine_names())} "
        "(default: each table's mapping rule, else local, which picks file-copy or rewrite per table).",
    ),
]
TablesOpt = Annotated[
    str | None,
    typer.Option("--tables", "-t", help="Only tables matching this glob (catalog.ns.table or ns.table)."),
]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2, default=str) + "\n")


@contextmanager
def command_context(config_path: Path | None, check_catalogs: bool = True) -> Iterator[Context]:
    """Load and check the configuration, reach the catalogs, open the store; map errors to exit codes."""
    try:
        config = load_config(config_path)
        ctx = Context(config)
        if check_catalogs:
            for name in config.catalogs:
                ctx.catalogs.check_reachable(name)
        ctx.store  # noqa: B018 - open (and migrate) the store only once the configuration is known good
    except (ConfigError, CatalogUnreachableError, StateError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        yield ctx
    except (PlanError, ConfigError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    finally:
        ctx.close()


def _human_bytes(n: int | None) -> str:
    size = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size < 1024 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PB"


_SEVERITY_STYLE = {Severity.BLOCKER: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def _findings_table(findings: list[Finding], title: str = "Findings") -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("table", "severity", "check", "finding", "fix"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(f.table, f"[{_SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.code, f.message, f.fix)
    return table


def _report_table(report: Any, title: str) -> Table:
    table = Table(title=title)
    for col in ("source", "destination", "status", "phase", "rows", "size", "seconds", "detail"):
        table.add_column(col, overflow="fold")
    for o in report.outcomes:
        style = "green" if o.status == "succeeded" else "bold red"
        table.add_row(
            o.source,
            o.destination,
            f"[{style}]{o.status}[/]",
            o.phase,
            f"{o.rows:,}",
            _human_bytes(o.bytes),
            f"{o.seconds:.1f}",
            o.message,
        )
    return table


def _finish_report(report: Any, as_json: bool, title: str) -> None:
    if as_json:
        emit_json(
            {
                "run_id": report.run_id,
                "kind": report.kind,
                "summary": report.summary(),
                "tables": report.outcomes,
                "report": report.report_path,
                "data_docs": report.data_docs_path,
            }
        )
    else:
        console.print(_report_table(report, title))
        s = report.summary()
        console.print(
            f"run {report.run_id}: {s['succeeded']} succeeded, {s['failed']} failed"
            + (", interrupted" if report.interrupted else "")
        )
        if report.report_path:
            console.print(f"validation report: {report.report_path}")
        if report.data_docs_path:
            console.print(f"Great Expectations Data Docs: {report.data_docs_path}")
    if report.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


@contextmanager
def progress_bars(ctx: Context, enabled: bool) -> Iterator[None]:
    """Rich progress: one line per table with the batches committed so far."""
    if not enabled or not console.is_terminal:
        yield
        return
    lock = threading.Lock()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        ids: dict[str, Any] = {}

        def on_event(event: str, data: dict[str, Any]) -> None:
            with lock:
                table = data.get("table", "")
                if event == "table-start":
                    ids[table] = bars.add_task(table, total=None, info="scaffold")
                elif event == "batch" and table in ids:
                    bars.update(ids[table], advance=1, info=f"batch {data['batch']}: {data['rows']:,} rows")
                elif event == "table-done" and table in ids:
                    bars.update(ids[table], total=1, completed=1, info=str(data.get("status")))

        ctx.progress = on_event
        yield


# ------------------------------------------------------------------------------------------ commands


@app.command()
def inventory(
    config: ConfigOpt = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Read the catalogs again instead of the saved facts.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List every source table with its facts (saved and reused unless --refresh)."""
    from icebridge.phases import inventory as phase

    with command_context(config) as ctx:
        facts, findings = phase.run(ctx, refresh=refresh)
        if as_json:
            emit_json({"tables": [f.to_dict() for f in facts], "findings": findings})
        else:
            console.print(_inventory_table(facts))
            if findings:
                console.print(_findings_table(findings))
    if any(f.severity is Severity.BLOCKER for f in findings):
        raise typer.Exit(EXIT_FAILED)


def _inventory_table(facts: list[TableFacts]) -> Table:
    table = Table(title="Inventory")
    for col in (
        "table",
        "v",
        "snapshots",
        "files",
        "deletes",
        "rows",
        "size",
        "formats",
        "partitioning",
        "evolved",
    ):
        table.add_column(col, overflow="fold")
    for f in facts:
        evolved = ", ".join(x for x, y in (("schema", f.schema_evolved), ("spec", f.partition_evolved)) if y)
        table.add_row(
            f.table,
            str(f.format_version),
            str(f.snapshot_count),
            str(f.data_files),
            str(f.delete_files),
            f"{f.records:,}",
            _human_bytes(f.data_bytes),
            ",".join(f.file_formats),
            ", ".join(f.partition_fields) or "-",
            evolved or "-",
        )
    return table


@app.command()
def preflight(config: ConfigOpt = None, tables: TablesOpt = None, as_json: JsonOpt = False) -> None:
    """Check every planned table before copying: readable source, creatable namespace, writable storage."""
    from icebridge.phases import preflight as phase
    from icebridge.runner import prepare

    with command_context(config) as ctx:
        run = ctx.store.start_run("preflight", str(ctx.config.path), {"tables": tables})
        items, inventory_findings = prepare(ctx, tables, refresh=True)
        findings = inventory_findings + phase.run(ctx, items)
        ctx.store.add_findings(run.id, findings)
        blockers = [f for f in findings if f.severity is Severity.BLOCKER]
        ctx.store.finish_run(
            run.id,
            "failed" if blockers else "succeeded",
            {"findings": len(findings), "blockers": len(blockers)},
        )
        if as_json:
            emit_json({"run_id": run.id, "findings": findings, "blockers": len(blockers)})
        else:
            console.print(_findings_table(findings, f"Pre-flight ({len(items)} tables)"))
            console.print(f"{len(blockers)} blocker(s), {len(findings) - len(blockers)} other finding(s)")
    if blockers:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def plan(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the Spark SQL script of every planned table, for review.")
    ] = False,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show and save the destination, strategy, reason, size and estimated duration per table.

    A dry run: nothing is written to any catalog or storage.
    """
    from icebridge.phases.plan import total_estimate, with_estimates
    from icebridge.runner import prepare, save_plan

    with command_context(config) as ctx:
        items, findings = prepare(ctx, tables, engine=engine)
        save_plan(ctx, items)
        if sql:
            _print_scripts(ctx, items, as_json)
            return
        items, rates = with_estimates(ctx, items)
        total = total_estimate(items, ctx.config.migrate.concurrency)
        blocked = [i for i in items if i.blocked] + [f for f in findings if f.severity is Severity.BLOCKER]
        moving = sum(i.bytes_to_move for i in items if not i.blocked)
        if as_json:
            emit_json(
                {
                    "tables": [_plan_json(i) for i in items],
                    "findings": findings,
                    "blocked": len(blocked),
                    "bytes_to_move": moving,
                    "estimate_seconds": total,
                    "throughput": {str(k): _jsonable(v) for k, v in rates.items()},
                }
            )
        else:
            console.print(_plan_table(items))
            extra = [f for i in items for f in i.findings if f.severity is not Severity.INFO] + findings
            if extra:
                console.print(_findings_table(extra, "Blockers and warnings"))
            console.print(
                f"{len(items)} table(s) planned, {len(blocked)} blocked; {_human_bytes(moving)} to move, "
                f"about {_duration(total)} at concurrency {ctx.config.migrate.concurrency}"
            )
            for rate in rates.values():
                console.print(f"  {rate.strategy}: {_human_bytes(int(rate.bytes_per_second))}/s, from {rate.basis}")
    if blocked:
        raise typer.Exit(EXIT_FAILED)


def _print_scripts(ctx: Context, items: list[PlanItem], as_json: bool) -> None:
    """The Spark SQL that migrates each table (scaffold, copy of the pinned snapshot, checks)."""
    from icebridge.engines.spark_sql import render_script
    from icebridge.errors import PlanError

    scripts: dict[str, str] = {}
    for item in items:
        if item.destination is None:
            continue
        try:
            source = ctx.catalogs.load_table(item.source)
            task = ctx.store.get_task(str(item.source))
            pinned = task.source_snapshot_id if task and task.source_snapshot_id is not None else None
            if pinned is None and source.current_snapshot() is not None:
                pinned = source.current_snapshot().snapshot_id  # type: ignore[union-attr]
            scripts[str(item.source)] = render_script(source, item.source, item.destination, pinned)
        except (PlanError, IceBridgeError) as exc:
            scripts[str(item.source)] = f"-- cannot be expressed in Spark SQL: {exc}"
    if as_json:
        emit_json({"scripts": scripts})
        return
    for name, script in scripts.items():
        console.rule(name)
        console.print(script, markup=False, highlight=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "? (no throughput measured yet)"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _plan_json(item: PlanItem) -> dict[str, Any]:
    return {
        "source": str(item.source),
        "destination": str(item.destination),
        "strategy": str(item.strategy),
        "reason": item.reason,
        "blocked": item.blocked,
        "bytes_to_move": item.bytes_to_move,
        "estimate_seconds": item.estimate_seconds,
        "findings": _jsonable(item.findings),
    }


def _plan_table(items: list[PlanItem]) -> Table:
    table = Table(title="Plan")
    for col in ("source", "destination", "strategy", "size", "estimate", "reason", "blockers"):
        table.add_column(col, overflow="fold")
    for i in items:
        blockers = "; ".join(f.message for f in i.findings if f.severity is Severity.BLOCKER)
        table.add_row(
            str(i.source),
            str(i.destination),
            str(i.strategy),
            _human_bytes(i.bytes_to_move),
            _duration(i.estimate_seconds) if i.estimate_seconds is not None else "-",
            i.reason,
            f"[bold red]{blockers}[/]" if blockers else "-",
        )
    return table


@app.command()
def migrate(
    config: ConfigOpt = None, tables: TablesOpt = None, engine: EngineOpt = None, as_json: JsonOpt = False
) -> None:
    """Scaffold, copy and validate every planned table; run it again to resume after a crash."""
    from icebridge import runner

    with command_context(config) as ctx, progress_bars(ctx, not as_json):
        report = runner.migrate(ctx, tables, engine)
    _finish_report(report, as_json, "Migrate")


@app.command()
def validate(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    level: Annotated[
        int | None,
        typer.Option(
            "--level",
            min=1,
            max=4,
            help="Run levels up to N: 1 structure, 2 metadata, 3 file identity, 4 content digest "
            "(default: the levels that fit each table's strategy; 5, the drill-down, follows any mismatch).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate migrated tables again; read-only on both sides. Writes an HTML report."""
    from icebridge import runner

    with command_context(config) as ctx:
        report = runner.validate(ctx, tables, level)
    _finish_report(report, as_json, "Validate")


@app.command()
def cutover(config: ConfigOpt = None, tables: TablesOpt = None, as_json: JsonOpt = False) -> None:
    """Final validation, then archive each source entry (files kept) so readers move to the destination."""
    from icebridge import runner

    with command_context(config) as ctx:
        report = runner.cutover(ctx, tables)
    _finish_report(report, as_json, "Cut-over")


@app.command()
def rollback(config: ConfigOpt = None, tables: TablesOpt = None, as_json: JsonOpt = False) -> None:
    """Re-register archived source entries from their recorded metadata locations."""
    from icebridge import runner

    with command_context(config) as ctx:
        report = runner.rollback(ctx, tables)
    _finish_report(report, as_json, "Rollback")


@app.command()
def status(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every run and every table with phase, status, rows, bytes, duration and error."""
    from icebridge.phases.plan import select

    with command_context(config, check_catalogs=False) as ctx:
        runs = ctx.store.list_runs(limit=20)
        tasks = ctx.store.list_tasks()
        chosen = set(select([t.source for t in tasks], tables))
        tasks = [t for t in tasks if t.source in chosen]
        if as_json:
            emit_json(
                {
                    "runs": runs,
                    "tables": [{**_jsonable(t), "duration_seconds": t.duration_seconds} for t in tasks],
                }
            )
            return
        run_table = Table(title="Runs")
        for col in ("run", "kind", "status", "started", "finished", "summary", "report"):
            run_table.add_column(col, overflow="fold")
        for r in runs:
            summary = ", ".join(f"{k}={v}" for k, v in (r.summary or {}).items() if v not in (0, False, None))
            run_table.add_row(
                str(r.id),
                r.kind,
                r.status,
                _time(r.started_at),
                _time(r.finished_at),
                summary,
                r.report_path or "-",
            )
        console.print(run_table)
        task_table = Table(title="Tables")
        for col in ("source", "destination", "phase", "status", "rows", "size", "seconds", "error"):
            task_table.add_column(col, overflow="fold")
        for t in tasks:
            style = {"succeeded": "green", "failed": "bold red", "running": "yellow"}.get(t.status, "")
            seconds = f"{t.duration_seconds:.1f}" if t.duration_seconds is not None else "-"
            task_table.add_row(
                t.source,
                t.destination,
                t.phase,
                f"[{style}]{t.status}[/]" if style else t.status,
                f"{t.rows or 0:,}",
                _human_bytes(t.bytes),
                seconds,
                t.error or "",
            )
        console.print(task_table)


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the sample estate.")] = Path("demo"),
    scale: Annotated[float, typer.Option("--scale", help="TPC-H scale factor of the sample data.")] = 0.01,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing demo folder.")] = False,
) -> None:
    """Build a sample foreign estate, then inventory → preflight → plan → migrate → cutover it."""
    from icebridge import demo as demo_module
    from icebridge import runner
    from icebridge.phases import inventory as inventory_phase
    from icebridge.phases import preflight as preflight_phase

    console.rule("[bold]IceBridge demo")
    try:
        config_path = demo_module.build_estate(
            directory, scale, overwrite=overwrite, progress=lambda msg: console.print(f"  {msg}")
        )
    except ConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    console.print(f"sample estate and configuration written: [bold]{config_path}[/]")
    with command_context(config_path) as ctx:
        console.rule("inventory")
        facts, _ = inventory_phase.run(ctx, refresh=True)
        console.print(_inventory_table(facts))
        console.rule("preflight")
        items, findings = runner.prepare(ctx, None)
        findings = findings + preflight_phase.run(ctx, items)
        console.print(_findings_table(findings, "Pre-flight"))
        console.rule("plan")
        console.print(_plan_table(items))
        console.rule("migrate")
        with progress_bars(ctx, True):
            migrated = runner.migrate(ctx)
        console.print(_report_table(migrated, "Migrate"))
        console.rule("cutover")
        cut = runner.cutover(ctx)
        console.print(_report_table(cut, "Cut-over"))
    ok = migrated.ok and cut.ok
    console.rule("[bold green]demo complete" if ok else "[bold red]demo failed")
    console.print(
        f"{sum(o.status == 'succeeded' for o in cut.outcomes)} of {len(cut.outcomes)} tables migrated, "
        f"validated and cut over. Try: icebridge status -c {config_path} ; icebridge rollback -c {config_path}"
    )
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def version_callback(value: bool) -> None:
    if value:
        console.print(f"icebridge {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True)] = False,
) -> None:
    """IceBridge: discover → pre-flight → plan → migrate (scaffold, copy, validate) → cut over."""


def main() -> None:
    """Console entry point."""
    try:
        app()
    except IceBridgeError as exc:  # a domain error that escaped a command: say it plainly
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_FAILED)
