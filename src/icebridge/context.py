"""One small context that builds each service once; tests swap any of them with ``replace``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from icebridge.catalogs import Catalogs
from icebridge.config import Config

if TYPE_CHECKING:
    from icebridge.engines import Engine
    from icebridge.store import Store


def _no_progress(_event: str, _data: dict[str, Any]) -> None:
    return None


@dataclass
class Context:
    """Everything a phase needs: the configuration and the services built from it."""

    config: Config
    run_id: int | None = None
    progress: Callable[[str, dict[str, Any]], None] = _no_progress
    cancel: threading.Event = field(default_factory=threading.Event)
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def store(self) -> Store:
        if "store" in self.overrides:
            return self.overrides["store"]  # type: ignore[no-any-return]
        from icebridge.store import open_store

        return open_store(self.config.state_url)

    @cached_property
    def catalogs(self) -> Catalogs:
        if "catalogs" in self.overrides:
            return self.overrides["catalogs"]  # type: ignore[no-any-return]
        return Catalogs(self.config)

    def engine(self, name: str = "local") -> Engine:
        """The data-plane engine called ``name`` (imported on first use)."""
        if f"engine:{name}" in self.overrides:
            return self.overrides[f"engine:{name}"]  # type: ignore[no-any-return]
        from icebridge.engines import load_engine

        engine = load_engine(name, self.config)
        self.overrides[f"engine:{name}"] = engine
        return engine

    def replace(self, **services: Any) -> Context:
        """A copy of this context with some services replaced (``store=…``, ``catalogs=…``, ``engine=…``)."""
        overrides = dict(self.overrides)
        for key, value in services.items():
            overrides["engine:local" if key == "engine" else key] = value
        return dataclasses.replace(self, overrides=overrides)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
