"""The ``icebridge`` command: each command parses its options, calls one service and renders the result.

``-c/--config`` and ``--json`` are accepted before the command (``icebridge -c x.yaml status``) as
well as after it. Errors become one line on stderr and the exit code of their class
(``errors.ERROR_TABLE``): 1 a table failed or is blocked, 2 bad configuration or usage, 130
interrupted.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer

from icebridge import __version__
from icebridge.engines import engine_names
from icebridge.errors import IceBridgeError, exit_code

if TYPE_CHECKING:
    from icebridge.app.runs import RunResult
    from icebridge.cli.output import ConsoleOutput
    from icebridge.context import AppContext

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    help="Migrate foreign Apache Iceberg tables into managed Iceberg tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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


class Globals:
    """Options given before the command."""

    config: Path | None = None
    json: bool = False


def _output(as_json: bool) -> ConsoleOutput:
    from icebridge.cli.output import ConsoleOutput, JsonOutput

    return JsonOutput() if (as_json or Globals.json) else ConsoleOutput()


def _fail(out: ConsoleOutput, exc: IceBridgeError) -> NoReturn:
    out.error(str(exc))
    raise typer.Exit(exit_code(exc)) from exc


@contextmanager
def opened(
    config: Path | None,
    out: ConsoleOutput,
    catalogs: Literal["all", "sources", "none"] = "all",
    command: str = "icebridge",
) -> Iterator[AppContext]:
    """The process's context for one command: configuration checked, then the catalogs it needs reached,
    before the store is opened; every domain error ends the command with its exit code."""
    from icebridge.config import load_config
    from icebridge.context import AppContext

    try:
        ctx = AppContext(load_config(config if config is not None else Globals.config))
    except IceBridgeError as exc:
        _fail(out, exc)
    push = _pushing(ctx, command)
    try:
        ctx.check_catalogs(catalogs)
        yield ctx
    except IceBridgeError as exc:
        _fail(out, exc)
    except KeyboardInterrupt as exc:
        out.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    finally:
        if push is not None:
            push()
        ctx.close()


def _pushing(ctx: AppContext, command: str) -> Callable[[], None] | None:
    """With $ICEBRIDGE_PUSHGATEWAY set, the command's metrics are pushed when it ends (a failure is a warning)."""
    if not os.environ.get("ICEBRIDGE_PUSHGATEWAY"):
        return None
    from icebridge.metrics import push_at_exit

    return push_at_exit(ctx, command)


# ------------------------------------------------------------------------------------------ commands


@app.command()
def inventory(
    config: ConfigOpt = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Read the catalogs again instead of the saved facts.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List every source table with its facts (saved and reused unless --refresh). Reads sources only."""
    from icebridge.app.inventory import InventoryRequest, InventoryService

    out = _output(as_json)
    with opened(config, out, catalogs="sources", command="inventory") as ctx:
        result = InventoryService(ctx).inventory(InventoryRequest(refresh=refresh))
    out.inventory(result)
    if result.blocked:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def preflight(
    config: ConfigOpt = None, tables: TablesOpt = None, engine: EngineOpt = None, as_json: JsonOpt = False
) -> None:
    """Check every planned table before copying: readable source, creatable namespace, writable storage."""
    from icebridge.app.preflight import PreflightRequest, PreflightService

    out = _output(as_json)
    with opened(config, out, command="preflight") as ctx:
        result = PreflightService(ctx).preflight(PreflightRequest(tables=tables, engine=engine))
    out.preflight(result)
    if result.blockers:
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
    from icebridge.app.plans import PlanRequest, PlanService

    out = _output(as_json)
    with opened(config, out, command="plan") as ctx:
        request = PlanRequest(tables=tables, engine=engine)
        if sql:
            out.scripts(PlanService(ctx).scripts(request))
            return
        result = PlanService(ctx).plan(request)
    out.plan(result)
    if result.blocked:
        raise typer.Exit(EXIT_FAILED)


def _run(config: Path | None, as_json: bool, title: str, **request: object) -> None:
    from icebridge.app.runs import RunRequest, RunService
    from icebridge.cli.progress import shown

    out = _output(as_json)
    with (
        opened(config, out, command=str(request["command"])) as ctx,
        shown(ctx.bus, out.out, enabled=not (as_json or Globals.json)),
    ):
        result = RunService(ctx).run(RunRequest.model_validate(request))
    _finish(out, result, title)


def _finish(out: ConsoleOutput, result: RunResult, title: str) -> None:
    out.run(result, title)
    if result.report_error:
        out.error(result.report_error)
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.summary.get("failed") or result.message:
        raise typer.Exit(EXIT_FAILED)
    if result.report_error:
        raise typer.Exit(EXIT_USAGE)


@app.command()
def migrate(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    engine: EngineOpt = None,
    allow_reload: AllowReloadOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Scaffold, copy and validate every planned table (a migrated one whose source moved on is synced);
    run it again to resume after a crash."""
    _run(config, as_json, "Migrate", command="migrate", tables=tables, engine=engine, allow_reload=allow_reload)


AllowReloadOpt = Annotated[
    bool,
    typer.Option(
        "--allow-reload",
        help="Copy a table again in full when its source's lineage broke (rolled back, expired past the last "
        "synced snapshot, re-created) instead of failing it.",
    ),
]


@app.command()
def sync(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    watch: Annotated[
        float | None,
        typer.Option("--watch", min=0.001, help="Sync again every SECONDS until Ctrl-C.", metavar="SECONDS"),
    ] = None,
    allow_reload: AllowReloadOpt = False,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay the source commits made since the last sync, one destination commit each, then validate."""
    _run(config, as_json, "Sync", command="sync", tables=tables, watch=watch, allow_reload=allow_reload, engine=engine)


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
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Where levels 3 and 4 read the files: local (this process, the default) or spark (the spark "
            "engine's executors).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate migrated tables again; read-only on both sides. Writes an HTML report."""
    _run(config, as_json, "Validate", command="validate", tables=tables, level=level, engine=engine)


@app.command()
def cutover(
    config: ConfigOpt = None, tables: TablesOpt = None, engine: EngineOpt = None, as_json: JsonOpt = False
) -> None:
    """Freeze writers, wait out the quiet period, sync and validate a last time, swap governance, then
    archive each source entry (files kept); each step is recorded, and a rerun resumes at the one that stopped."""
    _run(config, as_json, "Cut-over", command="cutover", tables=tables, engine=engine)


@app.command()
def rollback(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    discard: Annotated[
        bool,
        typer.Option(
            "--discard-destination-writes",
            help="Roll back even though the destination received commits after cut-over (they stay in the "
            "destination, unread).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Undo the completed cut-over steps in reverse: the source entry re-registered from its recorded
    metadata location, governance restored."""
    _run(config, as_json, "Rollback", command="rollback", tables=tables, discard_destination_writes=discard)


@app.command()
def status(config: ConfigOpt = None, tables: TablesOpt = None, as_json: JsonOpt = False) -> None:
    """Every run and every table with phase, status, rows, bytes, work time and error. Touches no catalog."""
    from icebridge.app.status import StatusRequest, StatusService

    out = _output(as_json)
    with opened(config, out, catalogs="none", command="status") as ctx:
        result = StatusService(ctx).status(StatusRequest(tables=tables))
    out.status(result)


@app.command()
def audit(
    config: ConfigOpt = None,
    tables: TablesOpt = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only steps at or after this time: ISO 8601 (UTC if no offset) or an age (2h, 7d)."
        ),
    ] = None,
    run: Annotated[int | None, typer.Option("--run", help="Only this run's steps.", min=1)] = None,
    after: Annotated[int | None, typer.Option("--after", help="Entries after this id (the next page).", min=0)] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries.", min=1, max=10_000)] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Every step of every table: when, by whom, what it did, and the table's state before and after."""
    from icebridge.app.audit import AuditRequest, AuditService

    out = _output(as_json)
    with opened(config, out, catalogs="none", command="audit") as ctx:
        request = AuditRequest(tables=tables, since=since, run_id=run, after=after, limit=limit)
        result = AuditService(ctx).entries(request)
    out.audit(result)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to build the sample estate.")] = Path("demo"),
    scale: Annotated[float, typer.Option("--scale", help="TPC-H scale factor of the sample data.")] = 0.01,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing demo folder.")] = False,
) -> None:
    """Build a sample foreign estate, then inventory → preflight → plan → migrate → cutover it."""
    from icebridge.app import demo as flow
    from icebridge.cli.progress import shown

    out = _output(False)
    out.rule("[bold]IceBridge demo")
    try:
        config_path = flow.build(directory, scale, overwrite, lambda msg: out.say(f"  {msg}"))
    except IceBridgeError as exc:
        _fail(out, exc)
    out.say(f"sample estate and configuration written: [bold]{config_path}[/]")
    with opened(config_path, out, command="demo") as ctx, shown(ctx.bus, out.out, enabled=True):
        done = []
        for step in flow.steps(ctx):
            out.demo_step(step)
            done.append(step)
    last = done[-1].result if done and done[-1].name == "cutover" else None
    ok = last is not None and not any(getattr(step.result, "failed", False) for step in done)
    out.rule("[bold green]demo complete" if ok else "[bold red]demo failed")
    if last is not None:
        cut = sum(o.status == "succeeded" for o in last.tables)  # type: ignore[attr-defined]
        out.say(f"{cut} of {len(last.tables)} tables migrated, validated and cut over.")  # type: ignore[attr-defined]
        if last.report:  # type: ignore[attr-defined]
            out.say(f"validation report: {last.report}")  # type: ignore[attr-defined]
    shown_config = shlex.quote(os.path.relpath(config_path))
    out.say("Try:")
    for command in ("status", "rollback"):
        out.say(f"  {_invocation()} {command} -c {shown_config}")
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _invocation() -> str:
    """How to run icebridge again, as this process was run (``.venv/bin/icebridge`` after ``make demo``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0.endswith("__main__.py") or not argv0:
        return f"{shlex.quote(os.path.relpath(sys.executable))} -m icebridge"
    if os.sep in argv0 and Path(argv0).exists():
        return shlex.quote(os.path.relpath(argv0))
    return "icebridge"


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port to listen on (default: $DATABRICKS_APP_PORT, else 8000)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve without a bearer token; refused unless --host is a loopback address."),
    ] = False,
) -> None:
    """Serve the REST API (/api/v1, /docs, /metrics); background workers carry out the runs it accepts.

    Every call needs 'Authorization: Bearer <token>' with the token from $ICEBRIDGE_API_TOKEN or
    service.token. Needs pip install 'icebridge[service]'.
    """
    out = _output(False)
    try:
        from icebridge.api.server import serve as run_server
    except ImportError as exc:
        out.error(f"the service needs packages that are not installed ({exc.name}): pip install 'icebridge[service]'")
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        run_server(config if config is not None else Globals.config, host, port, no_auth)
    except IceBridgeError as exc:
        _fail(out, exc)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"icebridge {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """IceBridge: discover → pre-flight → plan → migrate (scaffold, copy, validate) → cut over."""
    Globals.config = config
    Globals.json = as_json


def main() -> None:
    """Console entry point."""
    app()
