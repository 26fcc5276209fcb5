"""What every route module shares: the app's context as a dependency, the generation slot
(token quota, then bounded concurrency) and the token count after an answer.

Route modules (`api/app.py`, `api/openai_compat.py`, ...) import these instead of
reaching into each other, so a surface can be added without touching the others.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.wiring import AppContext
from core.types import Answer, AnswerEvent, Filters, Principal, RequestContext, Rung
from retrieval.service import RagService

if TYPE_CHECKING:
    from retrieval.agentic import AgentAnswer, Mode

log = logging.getLogger(__name__)


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(_context)]


@asynccontextmanager
async def generation(context: AppContext, who: Principal) -> AsyncIterator[None]:
    """A generation slot (bounded in flight), after the principal's token quota. The
    quota may live on Redis, so it is read and charged off the event loop. Without the
    LLM an answer is extractive and costs what a search costs: no slot, no quota."""
    if not context.settings.llm.enabled:
        yield
        return
    await run_in_threadpool(context.limiter.check_tokens, who)
    async with context.gate.slot():
        yield


async def count_tokens(context: AppContext, who: Principal, answer: Answer) -> None:
    """Charge the tokens a model answer used to the principal's quota."""
    p = answer.provenance
    if p is not None and p.rung is Rung.LLM:
        tokens = p.usage.input_tokens + p.usage.output_tokens
        await run_in_threadpool(context.limiter.record_tokens, who, tokens)


@dataclass(frozen=True, slots=True)
class OpenStream:
    """An answer stream whose first event is already known."""

    first: AnswerEvent | None
    events: Iterator[AnswerEvent]


@asynccontextmanager
async def answer_stream(
    context: AppContext,
    who: Principal,
    service: RagService,
    question: str,
    top_k: int | None,
    filters: Filters | None,
    scope: RequestContext,
) -> AsyncIterator[OpenStream]:
    """Retrieval and the first event run on entry, before a response starts (so their
    errors still get a status); the generation slot is held until exit, which also stops
    the model's stream when the client went away. Every streaming surface uses it."""
    async with generation(context, who):
        events = service.ask_stream(question, top_k, filters, scope)
        try:
            first = await run_in_threadpool(next, events, None)
            yield OpenStream(first, events)
        finally:
            await close_stream(events)


async def close_stream(events: object) -> None:
    """Stop an answer stream whose client went away (the model call ends with it). A
    stream still inside `next()` in a worker thread cannot be closed from here: it ends
    by itself when that call returns, and nothing reads it after."""
    close = getattr(events, "close", None)
    if close is None:
        return
    try:
        await run_in_threadpool(close)
    except ValueError:  # "generator already executing"
        log.info("an answer stream was still producing when its client left")


@dataclass(frozen=True, slots=True)
class OpenAgentStream:
    """An agentic answer's stream: `step` events, then the `AgentAnswer`."""

    first: AnswerEvent | AgentAnswer | None
    events: Iterator[AnswerEvent | AgentAnswer]


@asynccontextmanager
async def agent_stream(
    context: AppContext,
    who: Principal,
    question: str,
    mode: Mode,
    top_k: int | None,
    filters: Filters | None,
    scope: RequestContext,
) -> AsyncIterator[OpenAgentStream]:
    """`answer_stream` for the agentic mode: the route step is out before the response
    starts. A client that leaves does not stop the run: the agents' bounds do
    (RAG_AGENT__MAX_WALL_S)."""
    async with generation(context, who):
        events = context.agent.stream(question, mode, top_k, filters, scope)
        first = await run_in_threadpool(next, events, None)
        yield OpenAgentStream(first, events)
