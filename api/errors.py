"""The only place where template errors become HTTP responses (RFC 9457 problem+json)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import (
    ConfigError,
    InvalidRequestError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    RagError,
    SchemaMismatchError,
    StoreError,
)

log = logging.getLogger(__name__)

# Most specific first: the first base class that matches decides the status.
_STATUS: tuple[tuple[type[RagError], int, str], ...] = (
    (NotFoundError, 404, "not-found"),
    (PayloadTooLargeError, 413, "payload-too-large"),
    (InvalidRequestError, 422, "invalid-request"),
    (SchemaMismatchError, 503, "schema-mismatch"),
    (StoreError, 503, "store-unavailable"),
    (ModelUnavailableError, 503, "model-unavailable"),
    (ConfigError, 500, "configuration"),
    (RagError, 500, "internal"),
)


def problem(status: int, kind: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": f"about:blank#{kind}",
            "title": kind.replace("-", " "),
            "status": status,
            "detail": detail,
        },
        status_code=status,
        media_type="application/problem+json",
    )


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    for cls, status, kind in _STATUS:
        if isinstance(exc, cls):
            log.error(
                "%s %s -> %s: %s",
                request.method,
                request.url.path,
                status,
                exc,
                exc_info=status >= 500,
            )
            # Client errors say what was wrong; server errors do not leak internals.
            detail = str(exc) if status < 500 or kind != "internal" else "internal error"
            return problem(status, kind, detail)
    raise exc


def register(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _handle)
