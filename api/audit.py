"""The HTTP side of the audit trail: which requests are recorded, and the middleware that
records them once the response has gone out.

A record needs the principal (`api.security.principal` keeps it on the request state),
the status, and what the request touched: the services tell the request's
`core.telemetry.RequestRecord` (`telemetry.note`) which documents they searched, cited,
uploaded or deleted, and which model, route and cost answered. A request that never
authenticated (a 401) names nobody and is left to the access log: recording it would let
anyone without a key grow the audit table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import route_template
from core import telemetry
from core.types import Principal
from governance.audit import AuditEvent

if TYPE_CHECKING:
    from api.wiring import AppContext

log = logging.getLogger(__name__)

#: (method, route template) -> the action recorded. Reads of other tenants' data and
#: every write and admin action are here; health and docs pages are not.
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/v1/ask"): "ask",
    ("POST", "/v1/ask/stream"): "ask",
    ("POST", "/v1/chat/completions"): "ask",
    ("POST", "/v1/search"): "search",
    ("POST", "/mcp"): "mcp",
    ("POST", "/v1/documents"): "ingest",
    ("GET", "/v1/documents"): "documents.list",
    ("DELETE", "/v1/documents/{source}"): "delete",
    ("GET", "/v1/jobs/{job_id}"): "job.read",
    ("GET", "/v1/costs"): "costs.read",
    ("POST", "/v1/keys"): "key.create",
    ("GET", "/v1/keys"): "key.list",
    ("DELETE", "/v1/keys/{key_id}"): "key.revoke",
    ("GET", "/metrics"): "metrics.read",
}


def outcome(status: int) -> str:
    """A status as the audit trail words it."""
    if status < 400:
        return "ok"
    return {
        401: "unauthenticated",
        403: "denied",
        404: "not_found",
        413: "too_large",
        429: "limited",
        503: "unavailable",
    }.get(status, "invalid" if status < 500 else "error")


def event(
    action: str, who: Principal, status: int, record: telemetry.RequestRecord, store_text: bool
) -> AuditEvent:
    detail: dict[str, object] = {
        "status": status,
        "request_id": record.request_id,
        "role": who.role.value,
        **record.detail,
    }
    if record.rung is not None:
        detail["rung"] = record.rung.value
    if store_text and record.text is not None:
        detail["text"] = record.text
    return AuditEvent(
        action=action,
        principal=who.key_id,
        tenant=who.tenant,
        outcome=outcome(status),
        documents=record.documents,
        model=record.model,
        route=record.route,
        cost_usd=record.cost_usd,
        detail=detail,
    )


class AuditTrail:
    """Records each audited request after its response (its stream too) has been sent:
    the caller never waits for the write. Inside `RequestObserver`, whose request record
    the services write to."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        action = ACTIONS.get(
            (scope["method"], route_template(scope, str(scope.get("root_path", ""))))
        )
        state = scope.get("state")
        who = state.get("principal") if isinstance(state, dict) else None
        record = telemetry.current_request()
        context: AppContext | None = getattr(scope["app"].state, "context", None)
        if action is None or not isinstance(who, Principal) or record is None or context is None:
            return
        audit = context.audit
        if audit is None:
            return
        try:
            await run_in_threadpool(
                audit.record, event(action, who, status, record, audit.store_text)
            )
        except Exception:
            log.exception("could not write the audit record of %s", action)
