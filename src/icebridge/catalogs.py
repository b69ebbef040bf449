"""PyIceberg catalogs by name, with their capabilities. Storage is reached only through ``table.io``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyiceberg.catalog import Catalog, MetastoreCatalog, load_catalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

from icebridge import ledger
from icebridge.config import Config
from icebridge.errors import CatalogUnreachableError, SourceMetadataError, SourceTableMissingError
from icebridge.model import TableRef

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table import Table


class Catalogs:
    """Loads each configured catalog once, on first use, and maps PyIceberg errors onto ours."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._loaded: dict[str, Catalog] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Catalog:
        """The catalog called ``name`` in the configuration."""
        with self._lock:
            if name not in self._loaded:
                if name not in self._config.catalogs:
                    raise CatalogUnreachableError(f"{self._config.path}: catalogs: no catalog named {name!r}")
                try:
                    catalog = load_catalog(name, **self._config.catalog_properties(name))
                except Exception as exc:  # PyIceberg raises many kinds here; all mean "cannot use it"
                    raise CatalogUnreachableError(
                        f"{self._config.path}: catalogs.{name}: cannot load catalog: {self._say(exc)}"
                    ) from exc
                _record_writes(catalog)
                self._loaded[name] = catalog
            return self._loaded[name]

    def _say(self, exc: BaseException) -> str:
        return self._config.redact(_first_line(exc))

    def check_reachable(self, name: str) -> None:
        """Load the catalog and make one round trip, so a wrong URI fails before any work starts."""
        catalog = self.get(name)
        try:
            catalog.list_namespaces()
        except Exception as exc:
            raise CatalogUnreachableError(
                f"{self._config.path}: catalogs.{name}: catalog does not answer: {self._say(exc)}"
            ) from exc

    def list_tables(self, catalog_name: str) -> Iterator[TableRef]:
        """Every table of every namespace (recursively) in a catalog, in a stable order."""
        catalog = self.get(catalog_name)
        pending: list[tuple[str, ...]] = sorted(catalog.list_namespaces())
        seen: set[tuple[str, ...]] = set()
        while pending:
            namespace = pending.pop(0)
            if namespace in seen:
                continue
            seen.add(namespace)
            try:
                tables = catalog.list_tables(namespace)
            except NoSuchNamespaceError:
                continue
            for identifier in sorted(tables):
                yield TableRef(catalog_name, tuple(identifier[:-1]), identifier[-1])
            try:
                children = catalog.list_namespaces(namespace)
            except (NoSuchNamespaceError, NotImplementedError):
                children = []
            pending.extend(sorted(c for c in children if tuple(c) != namespace and tuple(c) not in seen))

    def load_table(self, ref: TableRef) -> Table:
        """Load a table, telling a missing table apart from unreadable metadata."""
        catalog = self.get(ref.catalog)
        try:
            return catalog.load_table(ref.identifier)
        except (NoSuchTableError, NoSuchNamespaceError) as exc:
            raise SourceTableMissingError(f"{ref}: table does not exist in catalog {ref.catalog!r}") from exc
        except Exception as exc:
            raise SourceMetadataError(f"{ref}: metadata cannot be read: {self._say(exc)}") from exc

    def table_exists(self, ref: TableRef) -> bool:
        return self.get(ref.catalog).table_exists(ref.identifier)

    def planned_location(self, ref: TableRef) -> str | None:
        """Where a table is or would be created: its own location, else the catalog's default for it.

        None when the catalog decides only at creation (a REST server, a namespace without a location
        in a catalog without a warehouse); scaffold checks the real location then.
        """
        catalog = self.get(ref.catalog)
        try:
            if catalog.table_exists(ref.identifier):
                return str(catalog.load_table(ref.identifier).metadata.location)
            if catalog.namespace_exists(ref.namespace):
                resolve = getattr(catalog, "_resolve_table_location", None)
                if resolve is not None:
                    return str(resolve(None, ref.namespace_str, ref.name))
                location = catalog.load_namespace_properties(ref.namespace).get("location")
                return f"{str(location).rstrip('/')}/{ref.name}" if location else None
        except Exception:  # an unreadable catalog is reported by the checks that need it
            return None
        warehouse = catalog.properties.get("warehouse")
        return f"{str(warehouse).rstrip('/')}/{ref.namespace_str}/{ref.name}" if warehouse else None

    def warehouse(self, name: str) -> str | None:
        """The ``warehouse`` property of a configured catalog, if it has one."""
        value = self._config.catalogs.get(name, {}).get("warehouse")
        return str(value) if value else None

    def supports_register(self, name: str) -> bool:
        """Whether the catalog can register a metadata file we wrote (needed to keep field ids)."""
        return isinstance(self.get(name), MetastoreCatalog)


# Properties PyIceberg reads for each catalog type (beyond the FileIO ones, which go by prefix).
_COMMON_KEYS = frozenset({"type", "uri", "warehouse", "py-catalog-impl", "py-io-impl", "max-workers"})
_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "sql": frozenset({"echo", "pool_pre_ping", "init_catalog_tables"}),
    "rest": frozenset(
        {"credential", "token", "oauth2-server-uri", "scope", "audience", "resource", "prefix", "signer", "signer.uri"}
    ),
    "glue": frozenset(
        {"profile_name", "region_name", "botocore_session", "aws_access_key_id", "aws_secret_access_key"}
    ),
    "hive": frozenset({"ugi", "kerberos_auth"}),
}
_FILE_IO_PREFIXES = (
    "s3.",
    "gcs.",
    "adls.",
    "hdfs.",
    "oss.",
    "hf.",
    "pyarrow.",
    "client.",
    "header.",
    "rest.",
    "glue.",
    "hive.",
    "ssl.",
    "auth.",
    "dynamodb.",
    "downcast-",
    "legacy-",
    "location-provider",
)


def property_problems(config: Config, name: str) -> list[tuple[str, str]]:
    """(key, problem) for each property of catalog ``name`` that its type does not know but that looks like
    one it does (a misspelling: ``warehous`` for ``warehouse``). Unknown catalog types are not judged."""
    import difflib

    props = config.catalogs.get(name, {})
    kind = str(props.get("type", "")).lower()
    if kind not in _KNOWN_KEYS:
        return []
    known = _COMMON_KEYS | _KNOWN_KEYS[kind]
    problems = []
    for key in props:
        if key in known or key.startswith(_FILE_IO_PREFIXES):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if close:
            problems.append((key, f"a {kind} catalog has no property {key!r}; did you mean {close[0]!r}?"))
    return problems


@dataclass(frozen=True)
class SnapshotTotals:
    """What a snapshot's summary says it holds (no manifest is read)."""

    rows: int = 0
    files: int = 0  # data and delete files
    bytes: int = 0


def snapshot_totals(table: Table, snapshot_id: int | None = None) -> SnapshotTotals:
    """The totals of ``snapshot_id`` (default: the current snapshot) from its summary; zeros when there is none."""
    snapshot = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    if snapshot is None or snapshot.summary is None:
        return SnapshotTotals()
    props = snapshot.summary.additional_properties
    return SnapshotTotals(
        rows=int(props.get("total-records", 0)),
        files=int(props.get("total-data-files", 0)) + int(props.get("total-delete-files", 0)),
        bytes=int(props.get("total-files-size", 0)),
    )


def _record_writes(catalog: Catalog) -> None:
    """Bind every FileIO the catalog opens (for a table it loads, or to write metadata at commit) to the
    ledger of the task running in the calling thread, so files written inside PyIceberg are recorded too.
    """
    opener = getattr(catalog, "_load_file_io", None)
    if opener is None:
        return

    def load_file_io(*args: Any, **kwargs: Any) -> FileIO:
        return ledger.bind(opener(*args, **kwargs))

    catalog._load_file_io = load_file_io  # type: ignore[method-assign]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
