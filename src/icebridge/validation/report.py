"""A self-contained HTML validation report per run, rendered from stored validation rows alone.

Everything shown comes from each comparator's ``details`` (JSON, as stored in the state store), so a
report can be written again later from the store. One file: inline CSS, no script, no external
asset; every value from the data is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LevelResult", "TableValidation", "render_html", "write_html_report"]

LEVEL_NAMES = {1: "structure", 2: "metadata", 3: "file identity", 4: "content digest", 5: "drill-down"}
_MAX_ROWS = 50  # rows of any one detail table shown in the report


@dataclass(frozen=True)
class LevelResult:
    """One comparator's stored outcome."""

    level: int
    comparator: str
    passed: bool
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level_name(self) -> str:
        """The level's name as its comparator recorded it (rows stored before it was recorded: the built-in names)."""
        return str(self.details.get("level_name") or LEVEL_NAMES.get(self.level, ""))

    @property
    def proves(self) -> str:
        """What this comparator proved ('' when it failed)."""
        return str(self.details.get("proves") or "") if self.passed else ""

    @classmethod
    def from_row(cls, row: Any) -> LevelResult:
        """From a stored ``ValidationRow`` or a ``ComparatorResult`` (level, comparator, passed, details)."""
        details = dict(getattr(row, "details", None) or {})
        summary = getattr(row, "summary", None) or details.get("summary") or ""
        return cls(int(row.level), str(row.comparator), bool(row.passed), str(summary), details)


@dataclass(frozen=True)
class TableValidation:
    """One table's validation in a run: its comparators' results, or the error that stopped it."""

    source: str
    destination: str
    results: tuple[LevelResult, ...] = ()
    strategy: str = ""
    error: str | None = None

    @classmethod
    def from_rows(
        cls, source: str, destination: str, rows: Iterable[Any], strategy: str = "", error: str | None = None
    ) -> TableValidation:
        """From the store's ``validations(task_id, run_id)`` rows (or ``ComparatorResult`` objects)."""
        results = sorted((LevelResult.from_row(r) for r in rows), key=lambda r: r.level)
        return cls(source, destination, tuple(results), strategy, error)

    @property
    def verdict(self) -> str:
        """``error`` (it could not run), ``failed``, ``passed``, or ``not validated`` (no result at all)."""
        if self.error:
            return "error"
        if not self.results:
            return "not validated"
        return "passed" if all(r.passed for r in self.results if r.level <= 4) else "failed"

    @property
    def levels(self) -> list[int]:
        """The levels that ran, ascending."""
        return sorted({r.level for r in self.results})


def _e(value: Any) -> str:
    if value is None:
        return "<span class=null>null</span>"
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, bool | int | float):
        return html.escape(json.dumps(value))
    return html.escape(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], total: int | None = None) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows[:_MAX_ROWS])
    more = total if total is not None else len(rows)
    note = f"<p class=note>{more - min(len(rows), _MAX_ROWS)} more not shown.</p>" if more > _MAX_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _badge(verdict: str) -> str:
    css = {"passed": "ok", "failed": "bad", "error": "bad"}.get(verdict, "warn")
    return f"<span class='badge {css}'>{html.escape(verdict)}</span>"


def _unpaired_files(d: Mapping[str, Any]) -> list[str]:
    """The sections listing source files without a copy and destination files not in the source."""
    return [
        _section(
            "Source files without a copy",
            _table(["file", "partition"], [[m["file"], m["partition"]] for m in d.get("missing", [])]),
        ),
        _section(
            "Destination files not in the source",
            _table(["file", "partition"], [[m["file"], m["partition"]] for m in d.get("extra", [])]),
        ),
    ]


def _section(title: str, content: str) -> str:
    return f"<h4>{html.escape(title)}</h4>{content}" if content else ""


def _executed_on(d: Mapping[str, Any]) -> str:
    """Where a level read the files: this process's threads, or a Spark cluster's executors."""
    where = d.get("executed_on")
    if not where:
        return ""
    if where.get("where") == "spark executors":
        text = (
            f"Files read on the Spark executors of {where.get('master')}: {where.get('tasks', 0)} task(s) in "
            f"{len(where.get('workers') or [])} Python worker(s), {where.get('executors')} executor(s) registered."
        )
    else:
        text = f"Files read in this process, {where.get('threads')} thread(s)."
    return f"<p class=note>{_e(text)}</p>"


def _detail_html(r: LevelResult) -> str:
    d = r.details
    parts: list[str] = [_executed_on(d)]
    if r.comparator == "structure":
        parts.append(_section("Differences", _table(["difference"], [[x] for x in d.get("differences", [])])))
    elif r.comparator == "metadata-partitions":
        rows = [[m["partition"], m["metric"], m["source"], m["destination"]] for m in d.get("mismatches", [])]
        parts.append(
            _section(
                "Statistics that differ",
                _table(["partition", "statistic", "source", "destination"], rows, d.get("mismatch_count")),
            )
        )
        parts.append(
            _section(
                "Partitions left to level 4",
                _table(["partition", "reason"], [[s["partition"], s["reason"]] for s in d.get("skipped", [])]),
            )
        )
    elif r.comparator == "metadata-files":
        parts.extend(_unpaired_files(d))
        parts.append(
            _section(
                "Manifest entries that differ",
                _table(
                    ["file", "fact", "source", "destination"],
                    [[m["file"], m["fact"], m["source"], m["destination"]] for m in d.get("mismatches", [])],
                ),
            )
        )
    elif r.comparator == "file-identity":
        parts.append(
            _section(
                "Files that are not identical",
                _table(
                    ["destination file", "partition", "problem"],
                    [[c["destination"], c.get("partition"), c["problem"]] for c in d.get("differing", [])],
                ),
            )
        )
        parts.extend(_unpaired_files(d))
    elif r.comparator == "content-digest":
        if d.get("library"):
            scanned = int(d.get("files_scanned_by_duckdb") or 0)
            readers = (
                f" {scanned} of {d.get('files_read', 0)} data files decoded by DuckDB's Parquet reader, "
                "the rest by IceBridge's reader."
                if scanned
                else " Data files decoded by IceBridge's reader."
            )
            parts.append(f"<p class=note>Row hashes computed by {_e(d['library'])}.{_e(readers)}</p>")

        def digest(x: Mapping[str, Any] | None) -> str:
            return "absent" if not x else f"{x['count']} rows, sum {x['sum']}, xor {x['xor']}"

        rows = [
            [m["partition"], digest(m.get("source")), digest(m.get("destination"))] for m in d.get("mismatches", [])
        ]
        parts.append(
            _section(
                "Partitions whose digests differ",
                _table(["partition", "source", "destination"], rows, d.get("mismatch_count")),
            )
        )
        rows = [[m["file"], m["registered"], m["belongs"], m["rows"]] for m in d.get("misplaced", [])]
        parts.append(
            _section(
                "Rows in a file registered under another partition",
                _table(["file", "registered as", "rows belong to", "rows"], rows),
            )
        )
    elif r.comparator == "drill-down":
        rows = [[p["partition"], p["source_only"], p["destination_only"]] for p in d.get("partitions", [])]
        parts.append(_section("Rows on one side only", _table(["partition", "source only", "destination only"], rows)))
        changes = []
        for c in d.get("changed", []):
            where = (
                c["source_partition"]
                if c["source_partition"] == c["destination_partition"]
                else f"{c['source_partition']} → {c['destination_partition']}"
            )
            what = ", ".join(c["columns"]) if c["columns"] else "(moved to another partition)"
            changes.append([where, what, c["source"], c["destination"], c["row"]])
        parts.append(
            _section(
                "Changed rows (a source row and its altered copy)",
                _table(["partition", "columns", "source", "destination", "source row"], changes),
            )
        )
        for side, key in (("source", "source_only"), ("destination", "destination_only")):
            samples = d.get(key, [])
            if samples:
                columns = list(samples[0]["row"].keys())
                rows = [[s["partition"], *(s["row"].get(c) for c in columns)] for s in samples]
                parts.append(
                    _section(
                        f"Sample rows only in the {side} (at most {d.get('sample_rows', len(samples))})",
                        _table(["partition", *columns], rows),
                    )
                )
    if d.get("error"):
        parts.append(f"<p class=error>{_e(d['error'])}</p>")
    return "".join(parts)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d2430;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d6dae1;padding-bottom:.3rem}
h3{margin:1.2rem 0 .3rem}h4{margin:.8rem 0 .3rem;font-size:.95rem;color:#3a4556}
table{border-collapse:collapse;margin:.4rem 0 .8rem;width:100%;font-size:13px}
th,td{border:1px solid #d6dae1;padding:.25rem .5rem;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f2f4f7}
.badge{display:inline-block;white-space:nowrap;padding:.05rem .5rem;border-radius:.6rem;font-weight:600;font-size:12px}
.nowrap{white-space:nowrap}
.ok{background:#dcf5e3;color:#11612b}.bad{background:#fde1e1;color:#9b1c1c}.warn{background:#fff2cc;color:#7a5b00}
.note{color:#5b6575;font-size:12px}.null{color:#8a93a3;font-style:italic}.error{color:#9b1c1c;font-weight:600}
.proved{color:#11612b}dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem}dt{font-weight:600}
"""


def render_html(run: Mapping[str, Any], tables: Sequence[TableValidation]) -> str:
    """The report as one HTML document."""
    counts = {v: sum(1 for t in tables if t.verdict == v) for v in ("passed", "failed", "error", "not validated")}
    info = "".join(f"<dt>{_e(str(k))}</dt><dd>{_e(v)}</dd>" for k, v in run.items())
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    rows = []
    for t in tables:
        names = {r.level: r.level_name for r in t.results}
        levels = ", ".join(f"{n} {names[n]}".strip() for n in t.levels) or "none"
        rows.append(
            f"<tr><td><a href='#{_anchor(t)}'>{_e(t.source)}</a></td><td>{_e(t.destination)}</td>"
            f"<td>{_e(t.strategy)}</td><td>{_e(levels)}</td><td>{_badge(t.verdict)}</td></tr>"
        )
    overview = (
        "<table><thead><tr><th>source table</th><th>destination</th><th>strategy</th><th>levels run</th>"
        f"<th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    sections = [_table_section(t) for t in tables]
    verdict_line = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no table"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>IceBridge validation report</title><style>{_CSS}</style></head><body>"
        f"<h1>IceBridge validation report</h1><p class=note>Generated {_e(generated)}. "
        f"{_e(len(tables))} table(s): {_e(verdict_line)}.</p>"
        f"<dl>{info}</dl><h2>Summary</h2>{overview}{''.join(sections)}"
        "<p class=note>Levels: 1 structure (schema, partition spec, sort order, properties); 2 metadata (manifest "
        "statistics per partition); 3 file identity (size and checksum of byte-copied files); 4 content digest "
        "(every row hashed, per partition); 5 drill-down (the rows on one side only).</p></body></html>"
    )


def _anchor(t: TableValidation) -> str:
    return "t-" + "".join(ch if ch.isalnum() else "-" for ch in t.source)


def _table_section(t: TableValidation) -> str:
    head = f"<h2 id='{_anchor(t)}'>{_e(t.source)} → {_e(t.destination)} {_badge(t.verdict)}</h2>" + (
        f"<p>Strategy: {_e(t.strategy)}</p>" if t.strategy else ""
    )
    if t.error:
        head += f"<p class=error>Validation could not run: {_e(t.error)}</p>"
    if not t.results:
        return head
    rows = []
    for r in t.results:
        proved = f"<span class=proved>{_e(r.proves)}</span>" if r.proves else ""
        rows.append(
            f"<tr><td class='nowrap'>{r.level} {_e(r.level_name)}</td>"
            f"<td class='nowrap'>{_e(r.comparator)}</td>"
            f"<td>{_badge('passed' if r.passed else 'failed')}</td><td>{_e(r.summary)}</td><td>{proved}</td></tr>"
        )
    overview = (
        "<table><thead><tr><th>level</th><th>comparator</th><th>result</th><th>summary</th><th>what it proved</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    details = "".join(
        f"<h3>Level {r.level}: {_e(r.comparator)}</h3>{body}" for r in t.results if (body := _detail_html(r))
    )
    return head + overview + details


def write_html_report(path: Path, run: Mapping[str, Any], tables: Sequence[TableValidation]) -> Path:
    """Write the report for one run to ``path`` (parents created) and return the path.

    ``run`` is shown as key/value pairs (e.g. id, command, started, finished); ``tables`` come from
    :meth:`TableValidation.from_rows` over the store's validation rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(run, tables), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path
