"""Mapping rules: read them, preview what edited rules would do, and save them into the configuration file.

A preview plans every inventoried source table under the edited rules exactly as ``plan`` would (the
same first-match rules, strategies, collisions and destination checks) without saving anything. A
save rewrites only the ``mappings:`` section of the configuration file — every other line, comment
and ``${VAR}`` reference stays as written — after checking the whole file as ``load_config`` would,
and only when the file is still the one the caller read (its ``version``). The running process then
plans with the saved rules, and so does the CLI, which reads the same file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from icebridge.config import MappingRule, load_config
from icebridge.errors import ConfigChangedError, ConfigError
from icebridge.model import Finding, Severity, TableRef

if TYPE_CHECKING:
    from icebridge.context import AppContext


class RuleInput(BaseModel):
    """One mapping rule as a person edits it: checked by the preview, never trusted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(max_length=1024, description="<catalog>.<namespace-glob>.<table-glob>")
    target: str = Field(max_length=1024, description="<catalog>.<namespace>; {namespace} keeps the source's.")
    rename: str | None = Field(default=None, max_length=1024, description="Destination table name; may use {table}.")
    strategy: str | None = Field(default=None, max_length=64, description="Force a strategy.")
    history: Literal["current", "all"] = Field(
        default="current", description="Kept as the file has it: current snapshot only, or every live snapshot."
    )
    governance: str | None = Field(
        default=None, max_length=64, description="Kept as the file has it: the governance adapter at cut-over."
    )


class RuleError(BaseModel):
    """Why one rule is not valid, naming its field."""

    model_config = ConfigDict(frozen=True)

    index: int
    field: str
    message: str


class MappingRules(BaseModel):
    """The configuration's rules, first match wins, and the file's version to save against."""

    model_config = ConfigDict(frozen=True)

    path: str
    version: str = Field(description="A digest of the configuration file; a save must send it back.")
    rules: list[RuleInput]
    strategies: list[str] = Field(description="The strategy names a rule may force.")
    catalogs: list[str]


class PreviewRequest(BaseModel):
    """Edited rules to preview."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RuleInput] = Field(max_length=1000)


class PreviewFinding(BaseModel):
    """A finding about one table under the edited rules."""

    model_config = ConfigDict(frozen=True)

    severity: str
    code: str
    message: str
    fix: str


class PreviewRow(BaseModel):
    """What one source table would become: its rule, destination, strategy, and what blocks it."""

    model_config = ConfigDict(frozen=True)

    source: str
    rule: int | None = Field(description="The index of the first rule that matches it (None: no rule does).")
    destination: str | None
    strategy: str | None
    reason: str
    blocked: bool
    collision: bool = Field(description="Another source maps to the same destination.")
    findings: list[PreviewFinding]


class PreviewResult(BaseModel):
    """The edited rules applied to every inventoried table, with what is wrong with the rules themselves."""

    model_config = ConfigDict(frozen=True)

    valid: bool = Field(description="Every rule is well formed and names configured catalogs.")
    rule_errors: list[RuleError]
    unmatched_rules: list[int] = Field(description="Rules that match no table (usually a typo).")
    tables: list[PreviewRow]
    mapped: int
    unmapped: int
    blocked: int
    collisions: int


class SaveRequest(BaseModel):
    """Rules to save, and the version of the file they were edited against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RuleInput] = Field(min_length=1, max_length=1000)
    version: str = Field(max_length=128)


_SAVING = threading.Lock()  # two saves in this process: the second sees the first's version


def _version(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()[:32]


def _finding(finding: Finding) -> PreviewFinding:
    return PreviewFinding(severity=str(finding.severity), code=finding.code, message=finding.message, fix=finding.fix)


def _as_input(rule: MappingRule) -> RuleInput:
    return RuleInput(
        source=rule.source,
        target=rule.target,
        rename=rule.rename,
        strategy=rule.strategy,
        history=rule.history,
        governance=rule.governance,
    )


class MappingService:
    """Edits the mapping rules of the configuration this process runs on."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def rules(self) -> MappingRules:
        """The rules in force, as written in the configuration file."""
        from icebridge.engines import strategy_names

        path = self.app.config.path
        return MappingRules(
            path=str(path),
            version=_version(self._read(path)),
            rules=[_as_input(r) for r in self.app.config.mappings],
            strategies=list(strategy_names()),
            catalogs=sorted(self.app.config.catalogs),
        )

    def check(self, rules: list[RuleInput]) -> tuple[list[MappingRule], list[RuleError]]:
        """The rules that hold, and an error for each one that does not (bad glob, unknown catalog or strategy)."""
        good: list[MappingRule] = []
        problems: list[RuleError] = []
        catalogs = self.app.config.catalogs
        for index, given in enumerate(rules):
            values = {k: (v.strip() if isinstance(v, str) else v) for k, v in given.model_dump().items()}
            values = {k: (v or None) if k in ("rename", "strategy", "governance") else v for k, v in values.items()}
            try:
                rule = MappingRule.model_validate(values)
            except ValidationError as exc:
                for err in exc.errors():
                    field = str(err["loc"][0]) if err["loc"] else "rule"
                    message = err["msg"].removeprefix("Value error, ")
                    problems.append(RuleError(index=index, field=field, message=message))
                continue
            unknown = [
                (side, cat)
                for side, cat in (("source", rule.source_catalog), ("target", rule.target_catalog))
                if cat not in catalogs
            ]
            for side, cat in unknown:
                known = ", ".join(sorted(catalogs))
                problems.append(
                    RuleError(index=index, field=side, message=f"unknown catalog {cat!r}; configured: {known}")
                )
            if not unknown:
                good.append(rule)
        return good, problems

    def preview(self, request: PreviewRequest) -> PreviewResult:
        """Plan every inventoried table under ``request.rules`` (nothing is saved or written anywhere)."""
        from icebridge.app.inventory import InventoryRequest, InventoryService
        from icebridge.context import AppContext
        from icebridge.phases import plan as plan_phase

        rules, problems = self.check(request.rules)
        inventory = InventoryService(self.app).inventory(InventoryRequest())
        refs = {f.table: TableRef.parse(f.table) for f in inventory.tables}
        unmatched = [i for i, r in enumerate(rules) if not any(r.matches(ref) for ref in refs.values())]
        if problems:
            return PreviewResult(
                valid=False,
                rule_errors=problems,
                unmatched_rules=[],
                tables=[],
                mapped=0,
                unmapped=len(refs),
                blocked=0,
                collisions=0,
            )
        edited = AppContext(
            dataclasses.replace(self.app.config, mappings=tuple(rules)),
            overrides={"store": self.app.store, "catalogs": self.app.catalogs},
        )
        try:
            items = {str(i.source): i for i in plan_phase.build(edited, inventory.tables)}
        finally:
            edited.close()
        rows: list[PreviewRow] = []
        for table, ref in sorted(refs.items()):
            item = items.get(table)
            rule = next((i for i, r in enumerate(rules) if r.matches(ref)), None)
            if item is None:
                rows.append(
                    PreviewRow(
                        source=table,
                        rule=None,
                        destination=None,
                        strategy=None,
                        reason="no rule matches it: it is not migrated",
                        blocked=False,
                        collision=False,
                        findings=[],
                    )
                )
                continue
            findings = [_finding(f) for f in item.findings]
            rows.append(
                PreviewRow(
                    source=table,
                    rule=rule,
                    destination=str(item.destination),
                    strategy=str(item.strategy),
                    reason=item.reason,
                    blocked=item.blocked,
                    collision=any(f.code == "destination-collision" for f in item.findings),
                    findings=findings,
                )
            )
        for finding in inventory.findings:  # unreadable tables: blocked whatever the rules
            if finding.severity is Severity.BLOCKER and finding.table not in refs:
                rows.append(
                    PreviewRow(
                        source=finding.table,
                        rule=None,
                        destination=None,
                        strategy=None,
                        reason="unreadable",
                        blocked=True,
                        collision=False,
                        findings=[_finding(finding)],
                    )
                )
        return PreviewResult(
            valid=True,
            rule_errors=[],
            unmatched_rules=unmatched,
            tables=rows,
            mapped=sum(r.rule is not None for r in rows),
            unmapped=sum(r.rule is None and not r.blocked for r in rows),
            blocked=sum(r.blocked for r in rows),
            collisions=sum(r.collision for r in rows),
        )

    def save(self, request: SaveRequest) -> MappingRules:
        """Write ``request.rules`` as the file's ``mappings:`` section, if the file is still at ``request.version``.

        Raises ConfigError naming the rule and field for a rule that does not hold (nothing is written),
        and ConfigChangedError when the file changed since it was read.
        """
        rules, problems = self.check(request.rules)
        path = self.app.config.path
        if problems:
            first = problems[0]
            raise ConfigError(f"{path}: mappings[{first.index}].{first.field}: {first.message}; nothing was saved")
        with _SAVING:
            return self._save(path, rules, request.version)

    def _save(self, path: Path, rules: list[MappingRule], version: str) -> MappingRules:
        raw = self._read(path)
        if _version(raw) != version:
            raise ConfigChangedError(
                f"{path} changed since the rules were read (by another user or an editor); "
                "reload the rules, apply your edits again, and save; nothing was saved"
            )
        text = replace_mappings(raw.decode("utf-8"), path, rules)
        target = path.resolve()  # a symlinked configuration stays a symlink: its target is rewritten
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temp, target.stat().st_mode & 0o7777)
            try:
                checked = load_config(temp)  # the whole file as the CLI will read it
            except ConfigError as exc:
                raise ConfigError(f"{str(exc).replace(str(temp), str(path))}; nothing was saved") from exc
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        # this process plans with the new rules from now on; nothing else of the configuration changed
        self.app.config = dataclasses.replace(self.app.config, mappings=checked.mappings)
        return self.rules()

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc


def render_rules(rules: list[MappingRule]) -> str:
    """The ``mappings:`` section for ``rules``, in the order given."""
    import yaml

    entries = [r.model_dump(exclude_defaults=True) for r in rules]  # a default is not written out
    body: str = yaml.safe_dump({"mappings": entries}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return body


def replace_mappings(text: str, path: Path, rules: list[MappingRule]) -> str:
    """``text`` with its top-level ``mappings:`` section replaced by ``rules``; every other line kept as is."""
    import yaml

    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}: expected a mapping with keys state, catalogs, mappings")
    section = render_rules(rules)
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "mappings":
            if key.start_mark.column != 0:
                raise ConfigError(f"{path}: 'mappings' is not a top-level block key; edit the file by hand")
            # up to the end of the line of the section's last value: comments and keys after it stay
            newline = text.find("\n", _last_leaf(value).end_mark.index)
            end = len(text) if newline < 0 else newline + 1
            return text[: key.start_mark.index] + section + text[end:]
    return text.rstrip("\n") + "\n" + section


def _last_leaf(node: object) -> Any:
    """The node written last inside ``node`` (its own end, for a scalar or an empty collection)."""
    import yaml

    while True:
        if isinstance(node, yaml.MappingNode) and node.value:
            node = node.value[-1][1]
        elif isinstance(node, yaml.SequenceNode) and node.value:
            node = node.value[-1]
        else:
            return node
