"""Who is asking, and what reaches the app: the HTTP side of identity and hardening.

- `principal` is the one FastAPI dependency that turns credentials into a `Principal`
  (and counts the request against the principal's rate limit); `Reader`, `Ingestor` and
  `Admin` require a role. Handlers never read identity from a body.
- `request_context` builds the `RequestContext` from the principal; a body may narrow it
  (a subset of the principal's groups), never widen it: another tenant is a 403.
- `Hardening` is a small ASGI middleware: Host allow-list (DNS rebinding), cross-site
  writes refused (a page on another origin cannot POST an upload), request bodies bounded
  (Starlette's body limit; the upload route raises it with FastAPI's `max_body_size`), and
  security headers on every response.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import AuthenticationError, PermissionDeniedError
from core.types import Principal, RequestContext, Role, Sensitivity

if TYPE_CHECKING:
    from api.wiring import AppContext

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `rag keys create`, or an OIDC access token",
)


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from its credentials only; also its per-minute rate limit."""
    context: AppContext = request.app.state.context
    if context.authenticator.mode == "none" and _exposed(request.scope):
        raise AuthenticationError(
            "this server runs without authentication (RAG_AUTH__MODE=none), which serves "
            "loopback connections only; set RAG_AUTH__MODE=keys and create keys"
        )
    who = context.authenticator.authenticate(credentials.credentials if credentials else None)
    context.limiter.check_request(who)
    request.state.principal = who
    return who


def _exposed(scope: Scope) -> bool:
    """True when the connection arrived on a non-loopback address of this machine: the
    `none` mode's second line of defence, for servers started around `rag serve`."""
    import ipaddress

    server = scope.get("server")
    if not server:
        return False  # a Unix socket: local by construction
    try:
        return not ipaddress.ip_address(str(server[0]).strip("[]")).is_loopback
    except ValueError:
        return False  # a name, not an address (in-process test clients)


def require(role: Role) -> Callable[[Principal], Principal]:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.can(role):
            raise PermissionDeniedError(f"this needs the {role.value} role (you have {who.role})")
        return who

    return check


Reader = Annotated[Principal, Depends(require(Role.READER))]
Ingestor = Annotated[Principal, Depends(require(Role.INGESTOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def check_tenant(who: Principal, tenant: str | None) -> None:
    """A body may repeat the principal's tenant, never name another one."""
    if tenant is not None and tenant != who.tenant:
        raise PermissionDeniedError(
            "the tenant comes from your credentials; you cannot act for another"
        )


def request_context(
    who: Principal,
    tenant: str | None = None,
    groups: Sequence[str] | None = None,
    sensitivity: Sensitivity = Sensitivity.INTERNAL,
) -> RequestContext:
    check_tenant(who, tenant)
    return RequestContext.for_principal(who, sensitivity, narrow_to=groups)


_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Hardening:
    """Host allow-list, same-origin writes, security headers (pure ASGI, streams intact)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str],
        cors_origins: Sequence[str],
        max_body_size: int,
    ) -> None:
        # The default body limit sits inside, so its plain-text 413 passes through here
        # and leaves as problem+json; routes may raise it (FastAPI's `max_body_size`).
        self.app = RequestBodyLimitMiddleware(app, max_body_size)
        self._any_host = "*" in allowed_hosts
        self._hosts = {h.lower().strip("[]") for h in allowed_hosts}
        self._origins = {o.rstrip("/").lower() for o in cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        netloc = headers.get("host", "").strip().lower()
        host = _hostname(netloc)
        refusal = None
        if not self._any_host and host not in self._hosts:
            refusal = (400, "invalid-host", "this Host is not served (RAG_API__ALLOWED_HOSTS)")
        elif scope["method"] in _UNSAFE and self._cross_site(headers, netloc):
            refusal = (403, "cross-site", "cross-site writes are refused (RAG_API__CORS_ORIGINS)")
        if refusal is not None:
            from api.errors import problem

            response = problem(*refusal)
            await response(scope, receive, self._with_headers(scope, send))
            return
        await self.app(scope, receive, self._with_headers(scope, send))

    def _cross_site(self, headers: dict[str, str], netloc: str) -> bool:
        """A browser names the page's origin; same scheme-less host:port is this API."""
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.rstrip("/").lower()
            return origin not in self._origins and urlsplit(origin).netloc != netloc
        return headers.get("sec-fetch-site") in ("cross-site", "same-site")

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        plain_error: dict[str, Any] = {}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower(): v for k, v in headers}
                if message["status"] >= 400 and present.get(b"content-type", b"").startswith(
                    b"text/plain"
                ):
                    # A framework's own plain-text error (Starlette's 413 body limit):
                    # held back, re-sent below as problem+json like every other error.
                    plain_error.update(status=message["status"], body=b"")
                    return
                # A page that sets its own policy (docs, playground) keeps it.
                extra = [h for h in (*_HEADERS, _CSP) if h[0] not in present]
                message["headers"] = [*headers, *extra]
            elif plain_error and message["type"] == "http.response.body":
                plain_error["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                from api.errors import problem

                status, text = plain_error["status"], plain_error["body"].decode("utf-8", "replace")
                kind = "payload-too-large" if status == 413 else "http-error"
                plain_error.clear()
                response = problem(status, kind, text.strip()[:200] or kind)
                await response({"type": "http"}, _no_receive, send_with_headers)
                return
            await send(message)

        return send_with_headers


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _hostname(netloc: str) -> str:
    """`host[:port]` or `[v6]:port` -> the bare lower-case host."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
