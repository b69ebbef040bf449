"""The two contexts every layer shares: one per process, one per run.

``AppContext`` is built once per process from the configuration and holds the services built from
it — the state store, the catalogs, the engines and the event bus — each on first use and safe to
share between worker threads (the CLI builds one per command, the server one for its lifetime).
Tests swap any service with ``replace`` (``app.replace(engine=FaultyEngine(...))``).

``RunScope`` is one run: its id in the store, its cancellation, its heartbeat (the leases it holds)
and the events it publishes, each stamped with the run's id.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from icebridge.config import Config
from icebridge.events import Event, EventBus, event_kind

if TYPE_CHECKING:
    from icebridge.catalogs import Catalogs
    from icebridge.engines import Engine
    from icebridge.leases import LeaseKeeper
    from icebridge.store import Store


class AppContext:
    """Everything a process needs, built once from the configuration: store, catalogs, engines, bus."""

    def __init__(self, config: Config, overrides: dict[str, Any] | None = None, bus: EventBus | None = None) -> None:
        self.config = config
        self.bus = bus if bus is not None else EventBus()
        self._overrides = dict(overrides or {})
        self._lock = threading.RLock()
        self._built: dict[str, Any] = {}
        self._unsubscribe_log = self.bus.subscribe(self._log)

    def _service(self, name: str, build: Any) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    @property
    def store(self) -> Store:
        """The state store, opened (and migrated) on first use."""

        def build() -> Store:
            from icebridge.store import open_store

            return open_store(self.config.state_url)

        return self._service("store", build)  # type: ignore[no-any-return]

    @property
    def store_open(self) -> bool:
        return "store" in self._overrides or "store" in self._built

    @property
    def catalogs(self) -> Catalogs:
        """The configured catalogs, each loaded on first use."""

        def build() -> Catalogs:
            from icebridge.catalogs import Catalogs

            return Catalogs(self.config)

        return self._service("catalogs", build)  # type: ignore[no-any-return]

    def engine(self, name: str = "local") -> Engine:
        """The data-plane engine called ``name`` (imported on first use)."""

        def build() -> Engine:
            from icebridge.engines import load_engine

            return load_engine(name, self.config)

        return self._service(f"engine:{name}", build)  # type: ignore[no-any-return]

    def check_catalogs(self, which: Literal["all", "sources", "none"] = "all") -> None:
        """Reach the catalogs a command needs (one round trip each), so a wrong URI fails before any work;
        ``sources`` leaves the destination catalogs untouched (inventory only reads sources)."""
        if which == "none":
            return
        names = self.config.source_catalogs if which == "sources" else list(self.config.catalogs)
        for name in names:
            self.catalogs.check_reachable(name)

    def replace(self, **services: Any) -> AppContext:
        """A context with some services replaced: ``store=…``, ``catalogs=…``, ``engine=…`` (the local
        engine) or ``engine_NAME=…``. It shares the configuration and the services already built,
        and has a bus of its own (whose event log goes to its own store)."""
        overrides = {**self._overrides, **{k: v for k, v in self._built.items() if not k.startswith("engine:")}}
        for key, value in services.items():
            if key == "engine":
                key = "engine:local"
            elif key.startswith("engine_"):
                key = "engine:" + key.removeprefix("engine_")
            overrides[key] = value
        return AppContext(self.config, overrides)

    def _log(self, event: Event) -> None:
        """The store's event log subscribes to the bus: every persistent event becomes a row."""
        if not event.persist:
            return
        self.store.event(
            event_kind(event), event.message(), run_id=event.run_id, task_id=event.task_id, data=event.data()
        )

    def close(self) -> None:
        """Close what this context opened (the store's connections); replaced services stay open."""
        self._unsubscribe_log()
        if "store" in self._built:
            self._built.pop("store").close()


@dataclass
class RunScope:
    """One run: its id, its cancellation, its heartbeat, and the events it publishes."""

    app: AppContext
    run_id: int
    command: str
    keeper: LeaseKeeper
    cancel: threading.Event = field(default_factory=threading.Event)
    engine: str | None = None  # the engine chosen for this run (--engine), over the strategies' own

    @property
    def config(self) -> Config:
        return self.app.config

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def catalogs(self) -> Catalogs:
        return self.app.catalogs

    def publish(self, event: Event) -> None:
        """Publish on the process's bus, stamped with this run's id."""
        if event.run_id is None:
            event = dataclasses.replace(event, run_id=self.run_id)
        self.app.bus.publish(event)
