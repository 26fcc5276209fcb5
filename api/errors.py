"""The only place where errors become HTTP responses: RFC 9457 problem+json, always.

Template errors map by class (most specific first); FastAPI's validation errors and
Starlette's HTTP errors (404 route, 405, 413 body limit) get the same shape; anything
unexpected is a 500 that says nothing about internals (the log has the traceback).
Validation errors never echo the input back: an oversized or hostile value stays here.
"""

from __future__ import annotations

import errno
import json
import logging
from typing import Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from core.errors import (
    AuthenticationError,
    ConfigError,
    InvalidFilterError,
    InvalidRequestError,
    LedgerError,
    ModelUnavailableError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QueueError,
    RagError,
    RateLimitedError,
    RejectedError,
    SchemaMismatchError,
    StorageFullError,
    StoreBusyError,
    StoreError,
)

log = logging.getLogger(__name__)

# Most specific first: the first base class that matches decides the status.
_STATUS: tuple[tuple[type[RagError], int, str], ...] = (
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (RateLimitedError, 429, "rate-limited"),
    (OverloadedError, 503, "overloaded"),
    (NotFoundError, 404, "not-found"),
    (PayloadTooLargeError, 413, "payload-too-large"),
    (InvalidFilterError, 400, "invalid-filter"),
    (InvalidRequestError, 422, "invalid-request"),
    (SchemaMismatchError, 503, "schema-mismatch"),
    (StoreBusyError, 503, "store-busy"),
    (StoreError, 503, "store-unavailable"),
    (StorageFullError, 503, "storage-full"),
    (LedgerError, 503, "metadata-database-unavailable"),
    (QueueError, 503, "queue-unavailable"),
    (ModelUnavailableError, 503, "model-unavailable"),
    (ConfigError, 500, "configuration"),
    (RagError, 500, "internal"),
)
_MAX_DETAIL = 500
#: `Retry-After` of a 503 whose error does not say when to come back: a dependency is
#: down, and a client that retries at once only adds load while it recovers.
RETRY_AFTER_S = 5
#: An `OSError` with one of these numbers is a full volume: 503, not a bug.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def problem(
    status: int,
    kind: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"about:blank#{kind}",
        "title": kind.replace("-", " "),
        "status": status,
        "detail": detail[:_MAX_DETAIL],
        **extra,
    }
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


class Classified(NamedTuple):
    """What an error means to a caller: its status, its kind, and a detail safe to show."""

    status: int
    kind: str
    detail: str


def classify(exc: BaseException) -> Classified:
    """The one mapping every surface uses (HTTP, event streams, MCP tool errors). Client
    errors say what was wrong; a server error names its kind, never its internals."""
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            detail = str(exc) if status < 500 or kind != "internal" else "internal error"
            return Classified(status, kind, detail[:_MAX_DETAIL])
    return Classified(500, "internal", "internal error")


async def _rag_error(request: Request, exc: Exception) -> JSONResponse:
    status, kind, detail = classify(exc)
    log.log(
        logging.ERROR if status >= 500 else logging.INFO,
        "%s %s -> %s: %s",
        request.method,
        request.url.path,
        status,
        exc,
        exc_info=status >= 500 and kind in ("internal", "configuration"),
    )
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="rag"'
    if isinstance(exc, RejectedError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return problem(status, kind, detail, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": ".".join(str(part) for part in error.get("loc", ()))[:200],
            "msg": str(error.get("msg", ""))[:200],
            "type": str(error.get("type", ""))[:80],
        }
        for error in exc.errors()[:20]
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:3])
    return problem(422, "invalid-request", summary or "invalid request", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = {
        400: "bad-request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",
        415: "unsupported-media-type",
    }.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else kind.replace("-", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="rag"')
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem(exc.status_code, kind, detail, headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110: `Allow` lists them all).
    Starlette names only the first matching route's, so `GET /v1/keys` went missing."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, BaseRoute) and route.matches(request.scope)[0] is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def stream_problem(exc: Exception) -> dict[str, Any]:
    """The problem object of an error that ends a stream whose status was already sent."""
    status, kind, detail = classify(exc)
    log.error("stream ended by %s: %s", type(exc).__name__, exc, exc_info=status >= 500)
    title = kind.replace("-", " ")
    return {"type": f"about:blank#{kind}", "title": title, "status": status, "detail": detail}


def stream_error(exc: Exception) -> str:
    """`stream_problem` as the JSON of an `error` event."""
    return json.dumps(stream_problem(exc))


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    """A full disk under a write the code did not guard (an upload's file, SQLite) is an
    outage to wait out; any other `OSError` is unexpected."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        log.error("%s %s -> 503: %s", request.method, request.url.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        return problem(503, "storage-full", "no space left on the server's disk", headers)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s -> 500", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal", "internal error")


def register(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
