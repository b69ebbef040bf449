"""Who asked: the person behind a request, and the token their on-behalf-of calls would use.

A surface builds the :class:`Actor` (the API from its bearer token and the ``X-Forwarded-*`` headers a
Databricks App's proxy adds; the CLI has none) and hands it to the service it calls. Only the name
is ever written anywhere — onto the runs it starts; the user's access token lives in memory for the
request (and for the run it starts in this process), is never stored, logged or shown, and is what
an on-behalf-of-user Unity Catalog call would authenticate with (:func:`current_actor`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

API_CLIENT = "api-token"  # the name of a caller known only by the service's bearer token


@dataclass(frozen=True)
class Actor:
    """A caller: a user name or e-mail when a proxy vouches for one, and that user's own token."""

    user: str | None = None
    email: str | None = None
    access_token: str | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """What is recorded as who started a run: the e-mail, else the user, else the API client."""
        return self.email or self.user or API_CLIENT


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("icebridge_actor", default=None)


def current_actor() -> Actor | None:
    """The actor the work in this thread is done for (None: the CLI, or a run resumed after a restart)."""
    return _current.get()


@contextmanager
def acting(actor: Actor | None) -> Iterator[None]:
    """Do the work inside the block for ``actor``."""
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)
