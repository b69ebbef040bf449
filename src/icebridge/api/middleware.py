"""ASGI middleware: bearer-token authentication (and who the caller is), and the request body limit.

Both run before any route, so a request without the token is answered 401 and nothing else — not a
validation error, not a 404 — and an oversized body is refused before it is parsed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icebridge.app.actor import Actor
from icebridge.app.reports import LINK_PATH, ReportLinks


async def _answer(send: Send, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Every request needs ``Authorization: Bearer <token>`` (compared in constant time), unless the
    server was started without auth; the caller's identity comes from the Databricks Apps proxy's
    ``X-Forwarded-*`` headers and is handed to the routes as an :class:`Actor`. ``public(method, path)``
    names the requests answered without the token: the wizard's page and its scripts, which hold no data
    (every piece of data they show is fetched from the API with the token). A read under a signed report
    link (``/reports/{run}/s/{token}/…``) is answered without it too, only while that link is valid for that
    run; the :class:`ReportLinks` that sign and check them are handed to the routes as ``report_links``."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        public: Callable[[str, str], bool] | None = None,
        links: ReportLinks | None = None,
    ) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self._public = public
        self.links = links or ReportLinks.for_token(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        public = (self._public is not None and self._public(method, path)) or self.links.admits(method, path)
        if self._token is not None and not public:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            valid = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)
            if not valid and LINK_PATH.match(path):
                await _answer(
                    send,
                    401,
                    "Unauthorized",
                    f"this report link is wrong, for another run, or expired (links last "
                    f"{self.links.seconds // 60} minutes): open the report again from the wizard's Validate page",
                )
                return
            if not valid:
                await _answer(
                    send,
                    401,
                    "Unauthorized",
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the server's "
                    "token (ICEBRIDGE_API_TOKEN or service.token)",
                    {"WWW-Authenticate": 'Bearer realm="icebridge"'},
                )
                return
        actor = Actor(
            user=headers.get("x-forwarded-user") or headers.get("x-forwarded-preferred-username") or None,
            email=headers.get("x-forwarded-email") or None,
            access_token=headers.get("x-forwarded-access-token") or None,
        )
        state = scope.setdefault("state", {})
        state["actor"] = actor
        state["report_links"] = self.links
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "BadRequest", "Content-Length is not a number")
                return
            if int(declared) > self.limit:
                await _answer(send, 413, "RequestTooLarge", self._message())
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _answer(send, 413, "RequestTooLarge", self._message())

    def _message(self) -> str:
        return f"request body over {self.limit} bytes; send less, or raise service.max_body_bytes"


def actor_of(state: Any) -> Actor:
    """The caller the authentication middleware recognised."""
    return getattr(state, "actor", None) or Actor()


def links_of(state: Any) -> ReportLinks:
    """The signer of this server's report links (the authentication middleware's)."""
    links = getattr(state, "report_links", None)
    if not isinstance(links, ReportLinks):
        raise RuntimeError("report links need the BearerAuth middleware in front of the routes")
    return links
