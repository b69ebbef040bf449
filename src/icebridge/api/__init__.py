"""The REST API: the app core behind FastAPI (``icebridge serve``).

Routers, one per resource, build the app layer's typed request, call one service and return its typed
result; request and response bodies are the app layer's own models. Imported only by ``serve``.
"""

from __future__ import annotations

from icebridge.api.app import create_app

__all__ = ["create_app"]
