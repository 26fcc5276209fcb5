"""The MCP server: `search` and `ask` as tools, over stdio (`rag mcp`) and streamable
HTTP (mounted at `/mcp`), scoped by the caller's credentials.

One tool set (`build_server`), two ways to learn who is calling (a `Resolve`):

- HTTP: every request to `/mcp` passes `api.security.principal` (the same bearer check,
  loopback rule of auth mode `none` and rate limit as `/v1/*`) before the SDK sees it;
  the tools read that principal back from the request the SDK hands them. The transport
  is stateless with JSON responses: no session outlives a request, so a credential is
  checked on every call and any replica can serve any call.
- stdio: `rag mcp` authenticates its key (`--key` / `RAG_API_KEY`) at start, and again on
  every call, so a revoked key stops working at once.

The tools take no tenant: the scope comes from the credentials; `access_groups` may only
narrow it (`RequestContext.for_principal`). `ask` holds a generation slot
(`api.deps.generation`) like `/v1/ask`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Request
from fastapi.security import HTTPBearer
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api import errors
from api.deps import count_tokens, generation
from api.schemas import CitationOut, Filters, Hit, Name, QueryText
from api.security import principal, request_context, require
from core.errors import (
    RagError,
)
from core.types import Answer, Principal, Role, Rung, SearchMode

if TYPE_CHECKING:
    from api.wiring import AppContext

#: The path of the streamable HTTP transport on the app.
MCP_PATH = "/mcp"
_INSTRUCTIONS = (
    "Search and question answering over the documents your credentials may read. "
    "`search` returns ranked passages; `ask` returns a grounded answer whose [n] markers "
    "point to its citations. Nothing outside your tenant and groups is visible."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a tool, and the app context it runs against."""

    context: AppContext
    who: Principal


#: How a transport establishes the caller of one tool call.
Resolve = Callable[[Context], Awaitable[Caller]]


class SearchResult(BaseModel):
    """The structured result of `search`: the same hits as `/v1/search`."""

    hits: list[Hit]


class AskResult(BaseModel):
    """The structured result of `ask`: the answer, its citations and how it was made."""

    question: str
    answer: str = Field(description="The answer; [n] markers point to citations")
    found: bool = Field(description="False when the documents do not hold the answer")
    rung: Rung | None = Field(description="Which rung of the degradation ladder answered")
    model: str
    grounded: bool | None = Field(description="Every sentence cites a passage it was given")
    citations: list[CitationOut]

    @classmethod
    def of(cls, answer: Answer) -> AskResult:
        p = answer.provenance
        return cls(
            question=answer.question,
            answer=answer.text,
            found=answer.found,
            rung=p.rung if p else None,
            model=p.model if p else answer.generator,
            grounded=p.grounded if p else None,
            citations=[CitationOut.of(c) for c in answer.citations],
        )


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Template errors become tool errors (`isError` results) the model can read, with the
    detail the HTTP API would give (`api.errors.classify`)."""
    try:
        yield
    except RagError as exc:
        raise ToolError(errors.classify(exc).detail) from exc


@contextmanager
def _root_logging_kept() -> Iterator[None]:
    """`MCPServer()` calls `logging.basicConfig` (a rich handler at INFO on the root
    logger): building the app must not change how the whole process logs."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
TopK = Annotated[int, Field(ge=1, le=50, description="How many passages")]
Groups = Annotated[
    list[Name] | None,
    Field(max_length=50, description="Narrow to these of your access groups (never widens)"),
]


def build_server(resolve: Resolve) -> MCPServer[Any]:
    """The MCP server with the `search` and `ask` tools; `resolve` says who calls."""
    with _root_logging_kept():
        server: MCPServer[Any] = MCPServer(
            "rag", title="RAG reference template", instructions=_INSTRUCTIONS, version="0.1.0"
        )

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def search(
        query: QueryText,
        ctx: Context,
        top_k: TopK = 5,
        mode: SearchMode = SearchMode.HYBRID,
        filters: Filters | None = None,
        access_groups: Groups = None,
    ) -> SearchResult:
        """Ranked passages (source, title, section, page, score, text) from the documents
        you may read. Filters narrow by source, title, section or page."""
        caller = await resolve(ctx)
        with _as_tool_errors():
            scope = request_context(caller.who, groups=access_groups)
            hits = await run_in_threadpool(
                caller.context.service.search, query, top_k, filters, mode, scope
            )
        return SearchResult(hits=[Hit.of(h) for h in hits])

    @server.tool(annotations=_READ_ONLY, structured_output=True)
    async def ask(
        question: QueryText,
        ctx: Context,
        top_k: TopK = 5,
        filters: Filters | None = None,
        access_groups: Groups = None,
    ) -> AskResult:
        """A grounded answer with numbered citations, from the documents you may read;
        `found` is false (and nothing is cited) when they do not hold the answer."""
        caller = await resolve(ctx)
        context, who = caller.context, caller.who
        with _as_tool_errors():
            scope = request_context(who, groups=access_groups)
            async with generation(context, who):
                answer = await run_in_threadpool(
                    context.service.ask, question, top_k, filters, scope
                )
            await count_tokens(context, who, answer)
        return AskResult.of(answer)

    return server


# --- streamable HTTP, mounted on the FastAPI app ---------------------------------------

_bearer = HTTPBearer(auto_error=False)
_reader = require(Role.READER)


async def _http_caller(ctx: Context) -> Caller:
    """The principal `_Authenticated` established for the HTTP request carrying the call."""
    request = ctx.request_context.request
    who = getattr(request.state, "principal", None) if isinstance(request, Request) else None
    if not isinstance(who, Principal):  # cannot happen behind `_Authenticated`
        raise ToolError("unauthenticated")
    context: AppContext = request.app.state.context  # type: ignore[union-attr]
    return Caller(context, who)


class _Authenticated:
    """The `/mcp` endpoint: the caller's credentials go through `api.security.principal`
    (401/403/429 as problem+json, by `api/errors.py`) before the SDK reads the body."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self._server = server
        self.route: Route | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # what FastAPI's routes set: metrics label it `/mcp`
        request = Request(scope, receive)
        credentials = await _bearer(request)
        _reader(await run_in_threadpool(principal, request, credentials))
        await self._server.session_manager.handle_request(scope, receive, send)


def mount(app: FastAPI) -> None:
    """Mount the streamable HTTP transport on the app, behind its middleware (Host
    allow-list, same-origin writes, body limit) and the bearer check."""
    server = build_server(_http_caller)
    app.state.mcp_server = server
    # A route, not a `Mount`: a mount answers `/mcp` with a redirect to `/mcp/`. POST
    # only: stateless, the server has nothing to push, so a GET stream (allowed by the
    # spec to be 405) would only hold a connection open for ever, and there is no
    # session to DELETE.
    endpoint = _Authenticated(server)  # an ASGI app: Starlette hands it the raw request
    endpoint.route = Route(MCP_PATH, endpoint, methods=["POST"], include_in_schema=False)
    app.router.routes.append(endpoint.route)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """Run what the mounted transport needs (its session manager) during the lifespan.
    A manager runs once, so each lifespan builds its own."""
    server: MCPServer[Any] = app.state.mcp_server
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # `api.security.Hardening` already checks Host and Origin against the app's
        # settings; the SDK's own check would only know loopback names.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=app_body_limit(app),
    )
    async with server.session_manager.run():
        yield


def app_body_limit(app: FastAPI) -> int:
    """The app's request body limit (RAG_API__MAX_BODY_KB), for the SDK's own check."""
    return int(app.state.context.settings.api.max_body_kb) * 1024


# --- stdio, for `rag mcp` ---------------------------------------------------------------


def serve_stdio(context: AppContext, token: str | None) -> None:
    """Serve the tools over stdin/stdout until the client closes them. The credentials
    are checked now (a bad key fails at start) and again on every call (revocation)."""
    context.authenticator.authenticate(token)

    async def caller(ctx: Context) -> Caller:
        with _as_tool_errors():
            who = _reader(await run_in_threadpool(context.authenticator.authenticate, token))
            await run_in_threadpool(context.limiter.check_request, who)
        return Caller(context, who)

    build_server(caller).run("stdio")
