"""PyIceberg catalogs by name, with their capabilities. Storage is reached only through ``table.io``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyiceberg.catalog import Catalog, MetastoreCatalog, load_catalog
from pyiceberg.catalog.rest import Capability, RestCatalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from icebridge import ledger
from icebridge.config import Config
from icebridge.errors import CatalogUnreachableError, SourceMetadataError, SourceTableMissingError
from icebridge.model import TableRef

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table import Table

UNITY_REST_PATH = "/api/2.1/unity-catalog/iceberg-rest"
"""Where Unity Catalog serves the Iceberg REST API (its ``warehouse`` is the name of a UC catalog)."""

# PyIceberg's class → the catalog type users write in their configuration
_KINDS = {
    "SqlCatalog": "sql",
    "RestCatalog": "rest",
    "GlueCatalog": "glue",
    "HiveCatalog": "hive",
    "DynamoDbCatalog": "dynamodb",
    "BigQueryMetastoreCatalog": "bigquery",
    "InMemoryCatalog": "in-memory",
}
# metastores whose namespaces are flat databases (Glue and Hive databases, BigQuery datasets, UC schemas)
_FLAT_NAMESPACES = frozenset({"glue", "hive", "bigquery", "unity"})
PROBE_COMMITS = 10
"""Commits the commit-rate probe makes on its scratch table."""


@dataclass(frozen=True)
class CatalogCapabilities:
    """What one catalog can do, detected from the catalog itself (for REST, from its server's configuration).

    - ``kind``: the catalog's type (``sql``, ``rest``, ``glue``, ``hive``, ...), ``unity`` for Unity Catalog's
      Iceberg REST endpoint.
    - ``register``: it registers a metadata file written elsewhere, so a destination keeps the source's
      field ids, spec ids and last column id exactly, and rollback can re-register an archived entry.
    - ``purge_on_drop``: a drop can also delete the table's files when asked (metastore catalogs purge from
      the client; a REST server is asked with ``purgeRequested``). IceBridge itself never asks for it.
    - ``views``: views can be listed and loaded through it.
    - ``max_namespace_depth``: how many levels a namespace may have; None when there is no limit.
    - ``vends_credentials``: it hands out storage credentials with the tables it serves.
    - ``commits_per_second``: measured by a probe on a scratch table, only when asked; None otherwise.
    """

    catalog: str
    kind: str
    register: bool
    purge_on_drop: bool
    views: bool
    max_namespace_depth: int | None
    vends_credentials: bool
    commits_per_second: float | None = None


class Catalogs:
    """Loads each configured catalog once, on first use, and maps PyIceberg errors onto ours."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._loaded: dict[str, Catalog] = {}
        self._capabilities: dict[str, CatalogCapabilities] = {}
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

    def planned_location(
        self, ref: TableRef, namespace_missing: bool = False, table_missing: bool = False
    ) -> str | None:
        """Where a table is or would be created: its own location, else the catalog's default for it.

        None when the catalog decides only at creation (a REST server asked about a namespace that does not
        exist yet, a namespace without a location in a catalog without a warehouse); scaffold checks the real
        location then. ``namespace_missing`` / ``table_missing``: the caller already knows (from a listing),
        so the catalog is not asked again.
        """
        catalog = self.get(ref.catalog)
        try:
            if not namespace_missing:
                if not table_missing and catalog.table_exists(ref.identifier):
                    return str(catalog.load_table(ref.identifier).metadata.location)
                if table_missing or catalog.namespace_exists(ref.namespace):
                    return self.new_table_location(ref)
        except Exception:  # an unreadable catalog is reported by the checks that need it
            return None
        warehouse = self.warehouse(ref.catalog)
        if warehouse is None or isinstance(catalog, RestCatalog):
            return None  # a REST server puts a new namespace where it likes
        return f"{warehouse.rstrip('/')}/{ref.namespace_str}/{ref.name}"

    def new_table_location(self, ref: TableRef, schema: Schema | None = None) -> str | None:
        """Where the catalog would create table ``ref`` (its namespace exists), without creating anything.

        A metastore catalog computes it from the namespace location or the warehouse; a REST server is asked
        through a staged create, which commits nothing. None when the catalog cannot tell.
        """
        catalog = self.get(ref.catalog)
        if isinstance(catalog, MetastoreCatalog):
            return str(catalog._resolve_table_location(None, ref.namespace_str, ref.name)).rstrip("/")
        if isinstance(catalog, RestCatalog):
            staged = catalog.create_table_transaction(ref.identifier, schema if schema is not None else Schema())
            return str(staged.table_metadata.location).rstrip("/")
        return None

    def warehouse(self, name: str) -> str | None:
        """The ``warehouse`` of a configured catalog, when it is a storage location.

        A REST catalog's ``warehouse`` is whatever its server asks for: a location, or a name (a Unity
        Catalog or Polaris catalog); a name is no place in storage and gives None.
        """
        props = self._config.catalogs.get(name, {})
        value = props.get("warehouse")
        if not value:
            return None
        rest = props.get("type", "").lower() == "rest" or (
            "type" not in props and str(props.get("uri", "")).startswith(("http://", "https://"))
        )
        return str(value) if not rest or _is_location(str(value)) else None

    def places_tables(self, name: str) -> bool:
        """Whether this client decides where a new table goes (a metastore catalog, from its warehouse or
        the namespace's location), rather than the catalog's server (REST)."""
        return isinstance(self.get(name), MetastoreCatalog)

    def supports_register(self, name: str) -> bool:
        """Whether the catalog can register a metadata file we wrote (needed to keep field ids)."""
        return self.capabilities(name).register

    def capabilities(self, name: str, measure_commits: bool = False) -> CatalogCapabilities:
        """What catalog ``name`` can do. Detection costs no write; ``measure_commits`` adds a short probe that
        creates a scratch namespace and table, commits to it :data:`PROBE_COMMITS` times, and removes both.
        """
        with self._lock:
            known = self._capabilities.get(name)
        if known is None:
            known = _detect(name, self.get(name))
            with self._lock:
                self._capabilities[name] = known
        if not measure_commits:
            return known
        try:
            rate = _measure_commits(self.get(name), purge=known.purge_on_drop)
        except Exception as exc:
            raise CatalogUnreachableError(
                f"{self._config.path}: catalogs.{name}: the commit-rate probe failed (it needs to create, "
                f"commit to and drop a scratch table): {self._say(exc)}"
            ) from exc
        return replace(known, commits_per_second=rate)


def warehouse_location(catalog: Catalog) -> str | None:
    """A loaded catalog's ``warehouse`` when it is a place in storage (a REST catalog's may be a name)."""
    value = catalog.properties.get("warehouse")
    if not value:
        return None
    return str(value) if not isinstance(catalog, RestCatalog) or _is_location(str(value)) else None


def _is_location(text: str) -> bool:
    return "://" in text or text.startswith(("file:", "/"))


def _detect(name: str, catalog: Catalog) -> CatalogCapabilities:
    """The capabilities of a loaded catalog, without writing to it."""
    kind = _KINDS.get(type(catalog).__name__, type(catalog).__name__.lower())
    if isinstance(catalog, RestCatalog):
        # PyIceberg keeps what the server's /v1/config answered (or the spec's defaults when it lists nothing)
        endpoints = set(getattr(catalog, "_supported_endpoints", ()))
        if urlsplit(catalog.uri).path.rstrip("/").endswith(UNITY_REST_PATH):
            kind = "unity"
        return CatalogCapabilities(
            catalog=name,
            kind=kind,
            register=Capability.V1_REGISTER_TABLE in endpoints,
            purge_on_drop=Capability.V1_DELETE_TABLE in endpoints,
            views=Capability.V1_LIST_VIEWS in endpoints,
            max_namespace_depth=1 if kind in _FLAT_NAMESPACES else None,
            vends_credentials=Capability.V1_LOAD_CREDENTIALS in endpoints,
        )
    return CatalogCapabilities(
        catalog=name,
        kind=kind,
        register=isinstance(catalog, MetastoreCatalog),
        purge_on_drop=isinstance(catalog, MetastoreCatalog),
        views=_serves_views(catalog),
        max_namespace_depth=1 if kind in _FLAT_NAMESPACES else None,
        vends_credentials=False,
    )


def _serves_views(catalog: Catalog) -> bool:
    """PyIceberg's catalogs without views say so at once; any other answer (a missing namespace) means views."""
    try:
        catalog.list_views((f"icebridge_probe_{uuid.uuid4().hex[:12]}",))
    except NotImplementedError:
        return False
    except Exception:
        return True
    return True


def _measure_commits(catalog: Catalog, purge: bool, commits: int = PROBE_COMMITS) -> float:
    """Commits per second on a scratch table of the catalog (metadata-only commits: no data is written).

    The scratch namespace and table are dropped again, the table purged where the catalog can, so the files
    of its commits go with it.
    """
    namespace = (f"icebridge_probe_{uuid.uuid4().hex[:12]}",)
    identifier = (*namespace, "commit_rate")
    catalog.create_namespace(namespace)
    try:
        table = catalog.create_table(identifier, Schema(NestedField(1, "id", LongType(), required=False)))
        try:
            started = time.perf_counter()
            for i in range(commits):
                with table.transaction() as txn:
                    txn.set_properties({"icebridge.probe": str(i)})
            elapsed = time.perf_counter() - started
        finally:
            if purge:
                catalog.purge_table(identifier)
            else:
                catalog.drop_table(identifier)
    finally:
        catalog.drop_namespace(namespace)
    return commits / elapsed if elapsed > 0 else float("inf")


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
