"""Errors as HTTP answers: every IceBridge error through its row of ``errors.ERROR_TABLE``, one body shape."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from icebridge.errors import IceBridgeError, http_status

if TYPE_CHECKING:
    from icebridge.config import Config

log = logging.getLogger("icebridge.api")


class FieldError(BaseModel):
    """One invalid part of a request: where it is and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """What every error answers: the error's class, a message naming the thing and the fix, and for an
    invalid request each invalid part."""

    model_config = ConfigDict(frozen=True)

    error: str = Field(description="The error's class, e.g. NotFoundError, PlanError, RequestValidationError.")
    message: str
    detail: list[FieldError] | None = None


def _json(status: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def error_response(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer outside a route (authentication, body size)."""
    return _json(status, ErrorBody(error=error, message=message), headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad input (a pattern, a configuration value)."),
        (401, "Missing or wrong bearer token."),
        (404, "No such run, task, catalog or report."),
        (409, "The thing is held or finished elsewhere."),
        (413, "Request body too large."),
        (422, "The request does not fit its schema, or the plan cannot be carried out."),
        (502, "A catalog did not answer."),
        (503, "The state store did not answer; try again."),
    )
}


def install(app: FastAPI, config: Config) -> None:
    """Register the handlers that turn errors into answers; nothing secret is ever in one."""

    @app.exception_handler(IceBridgeError)
    async def _domain(request: Request, exc: IceBridgeError) -> JSONResponse:
        return _json(http_status(exc), ErrorBody(error=type(exc).__name__, message=config.redact(str(exc))))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            FieldError(
                loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                msg=config.redact(str(e.get("msg", ""))),
                type=str(e.get("type", "")),
            )
            for e in exc.errors()
        ]
        where = ", ".join(".".join(str(p) for p in f.loc) for f in fields[:5]) or "the request"
        message = f"invalid request: {where}; see 'detail', and /openapi.json for the schema"
        return _json(422, ErrorBody(error="RequestValidationError", message=message, detail=fields))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return _json(exc.status_code, ErrorBody(error="HTTPError", message=config.redact(message)), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.error("request %s %s failed (ref %s)", request.method, request.url.path, ref, exc_info=exc)
        message = f"internal error (ref {ref}); the server's log has the details"
        return _json(500, ErrorBody(error="InternalError", message=message))
