"""The application core: one service per resource, called alike by the CLI, the REST API and the wizard.

A surface builds one :class:`~icebridge.context.AppContext` per process, builds a typed request,
calls one service and renders its typed result (pydantic models, so the API serves them as they are).
"""

from __future__ import annotations

from icebridge.context import AppContext, RunScope

__all__ = ["AppContext", "RunScope"]
