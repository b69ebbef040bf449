"""How the CLI shows a result: tables on the console, or JSON (``--json``). One method per result type."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from icebridge.model import Finding, Severity, TableFacts
from icebridge.units import duration, human_bytes

if TYPE_CHECKING:
    from icebridge.app.audit import AuditLog
    from icebridge.app.demo import DemoStep
    from icebridge.app.inventory import InventoryResult
    from icebridge.app.plans import PlannedTable, PlanResult, ScriptsResult
    from icebridge.app.preflight import PreflightResult
    from icebridge.app.runs import RunResult
    from icebridge.app.status import StatusResult
    from icebridge.phases.estimate import Estimates


def make_console(stderr: bool = False) -> Console:
    """A console; when the output is a file or a pipe, wide enough that tables do not wrap."""
    plain = Console(stderr=stderr)
    if plain.is_terminal or "COLUMNS" in os.environ:
        return plain
    return Console(stderr=stderr, width=200)


_SEVERITY_STYLE = {Severity.BLOCKER: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


class ConsoleOutput:
    """Rich tables for people."""

    def __init__(self) -> None:
        self.out = make_console()
        self.err = make_console(stderr=True)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)

    def say(self, text: str) -> None:
        self.out.print(text, highlight=False)

    def rule(self, title: str) -> None:
        self.out.rule(title)

    # ------------------------------------------------------------------------------------ results

    def findings(self, findings: list[Finding], title: str = "Findings") -> None:
        table = Table(title=title, show_lines=False)
        for col in ("table", "severity", "check", "finding", "fix"):
            table.add_column(col, overflow="fold")
        for f in findings:
            table.add_row(f.table, f"[{_SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.code, f.message, f.fix)
        self.out.print(table)

    def inventory(self, result: InventoryResult) -> None:
        self.out.print(_inventory_table(result.tables))
        if result.findings:
            self.findings(result.findings)

    def preflight(self, result: PreflightResult) -> None:
        self.findings(result.findings, f"Pre-flight ({result.checked} tables)")
        others = len(result.findings) - result.blockers
        self.say(f"{result.blockers} blocker(s), {others} other finding(s)")

    def plan(self, result: PlanResult) -> None:
        self.out.print(_plan_table(result.tables))
        extra = [f for t in result.tables for f in t.findings if f.severity is not Severity.INFO] + result.findings
        if extra:
            self.findings(extra, "Blockers and warnings")
        self.say(
            f"{len(result.tables)} table(s) planned, {result.blocked} blocked; "
            f"{human_bytes(result.bytes_to_move)} to move, {_about(result.estimate_seconds)} "
            f"at concurrency {result.concurrency}"
        )
        for rate in result.throughput.values():
            self.say(f"  {rate.strategy}: {human_bytes(rate.bytes_per_second)}/s, from {rate.basis}")
        if result.estimates is not None:
            self.out.print(_estimates_table(result.estimates))

    def scripts(self, result: ScriptsResult) -> None:
        for name, script in result.scripts.items():
            self.out.rule(name)
            self.out.print(script, markup=False, highlight=False)

    def run(self, result: RunResult, title: str) -> None:
        table = Table(title=title)
        for col in ("source", "destination", "status", "phase", "rows", "size", "seconds", "detail"):
            table.add_column(col, overflow="fold")
        styles = {"succeeded": "green", "skipped": "yellow"}
        for o in result.tables:
            style = styles.get(str(o.status), "bold red")
            table.add_row(
                o.source,
                o.destination,
                f"[{style}]{o.status}[/]",
                o.phase,
                f"{o.rows:,}",
                human_bytes(o.bytes),
                f"{o.seconds:.1f}",
                o.message,
            )
        if result.tables:
            self.out.print(table)
        s = result.summary
        line = f"run {result.run_id}: {s['succeeded']} succeeded, {s['failed']} failed"
        if s.get("skipped"):
            line += f", {s['skipped']} skipped (held by another run)"
        if result.interrupted:
            line += ", interrupted (run the command again to resume)"
        self.say(line)
        if result.message:
            self.say(result.message)
        if result.report:
            self.say(f"validation report: {result.report}")
        if result.data_docs:
            self.say(f"Great Expectations Data Docs: {result.data_docs}")

    def demo_step(self, step: DemoStep) -> None:
        """One step of the demo: its heading, then its result as the command of that name shows it."""
        self.rule(step.name)
        if step.name in ("migrate", "cutover"):
            self.run(step.result, "Migrate" if step.name == "migrate" else "Cut-over")  # type: ignore[arg-type]
        else:
            getattr(self, step.name)(step.result)

    def status(self, result: StatusResult) -> None:
        runs = Table(title="Runs")
        for col in ("run", "kind", "status", "started", "finished", "summary", "report"):
            runs.add_column(col, overflow="fold")
        for r in result.runs:
            summary = ", ".join(f"{k}={v}" for k, v in (r.summary or {}).items() if v not in (0, False, None))
            status = f"{r.status} (stale: its process is gone)" if r.stale else r.status
            runs.add_row(
                str(r.id), r.kind, status, _time(r.started_at), _time(r.finished_at), summary, r.report_path or "-"
            )
        self.out.print(runs)
        tasks = Table(title="Tables")
        for col in ("source", "destination", "phase", "status", "rows", "size", "work s", "copy s est/actual", "error"):
            tasks.add_column(col, overflow="fold")
        for t in result.tables:
            style = {"succeeded": "green", "failed": "bold red", "running": "yellow"}.get(t.status, "")
            seconds = f"{t.duration_seconds:.1f}" if t.duration_seconds is not None else "-"
            estimate = f"{t.estimate_seconds:.1f}" if t.estimate_seconds is not None else "-"
            copied = f"{t.copy_seconds:.1f}" if t.copy_seconds is not None else "-"
            status = f"{t.status} ({t.held_by})" if t.held_by else t.status
            tasks.add_row(
                t.source,
                t.destination,
                t.phase,
                f"[{style}]{status}[/]" if style else status,
                f"{t.rows or 0:,}",
                human_bytes(t.bytes),
                seconds,
                f"{estimate} / {copied}",
                t.error or "",
            )
        self.out.print(tasks)

    def audit(self, result: AuditLog) -> None:
        table = Table(title="Audit")
        for col in ("id", "time", "actor", "table", "step", "what", "before → after"):
            table.add_column(col, overflow="fold")
        for e in result.entries:
            table.add_row(
                str(e.id), _time(e.at), e.actor or "-", e.table or "-", e.kind, e.message, _change(e.before, e.after)
            )
        self.out.print(table)
        more = f"; more after entry {result.next_after}: --after {result.next_after}" if result.next_after else ""
        self.say(f"{len(result.entries)} entries{more}")


class JsonOutput(ConsoleOutput):
    """Machine-readable: each result is printed as one JSON document on stdout; errors still go to stderr."""

    def emit(self, result: BaseModel | dict[str, Any]) -> None:
        text = result.model_dump_json(indent=2) if isinstance(result, BaseModel) else _dumps(result)
        sys.stdout.write(text + "\n")

    def say(self, text: str) -> None:
        return None

    def rule(self, title: str) -> None:
        return None

    def inventory(self, result: InventoryResult) -> None:
        self.emit(result)

    def preflight(self, result: PreflightResult) -> None:
        self.emit(result)

    def plan(self, result: PlanResult) -> None:
        self.emit(result)

    def scripts(self, result: ScriptsResult) -> None:
        self.emit(result)

    def run(self, result: RunResult, title: str) -> None:
        self.emit(result)

    def status(self, result: StatusResult) -> None:
        self.emit(result)

    def audit(self, result: AuditLog) -> None:
        self.emit(result)


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What a step changed: ``key: old → new`` for each key that differs (all of ``after`` without a before)."""
    if after is None:
        return ""
    was = before or {}
    keys = [k for k in after if was.get(k) != after[k]] + [k for k in was if k not in after]
    return "; ".join(f"{k}: {_short(was.get(k))} → {_short(after.get(k))}" for k in keys)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _about(seconds: float | None) -> str:
    text = duration(seconds)
    return text if seconds is None or seconds < 1 else f"about {text}"


def _dumps(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, indent=2, default=str)


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _inventory_table(facts: list[TableFacts]) -> Table:
    table = Table(title="Inventory")
    for col in ("table", "v", "snapshots", "files", "deletes", "rows", "size", "formats", "partitioning", "evolved"):
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
            human_bytes(f.data_bytes),
            ",".join(f.file_formats),
            ", ".join(f.partition_fields) or "-",
            evolved or "-",
        )
    return table


def _plan_table(items: list[PlannedTable]) -> Table:
    table = Table(title="Plan")
    for col in ("source", "destination", "strategy", "size", "estimate", "reason", "blockers"):
        table.add_column(col, overflow="fold")
    for i in items:
        blockers = "; ".join(f.message for f in i.findings if f.severity is Severity.BLOCKER)
        table.add_row(
            i.source,
            i.destination,
            i.strategy,
            human_bytes(i.bytes_to_move),
            duration(i.estimate_seconds) if i.estimate_seconds is not None else "-",
            i.reason,
            f"[bold red]{blockers}[/]" if blockers else "-",
        )
    return table


def _estimates_table(estimates: Estimates) -> Table:
    table = Table(title="On each engine (from rates measured here)")
    for col in ("engine", "compute", "duration", "cost", "vs notebook", "basis"):
        table.add_column(col, overflow="fold")
    for e in estimates.engines:
        cost = f"{e.cost:,.2f} {e.currency}" if e.cost is not None else "- (no price configured)"
        saving = f"{e.saving_vs_notebook:.0%} less" if e.saving_vs_notebook is not None else "-"
        table.add_row(e.engine, e.compute, _about(e.seconds), cost, saving, e.basis)
    return table
