"""The OpenAI-compatible surface: `POST /v1/chat/completions` and `GET /v1/models`.

Existing chat clients (the `openai` SDK, LangChain's `ChatOpenAI`, chat UIs) talk to the
template unchanged. The models are the answer pipelines, not the gateway's catalog:
`rag-extractive` (cited sentences, no model) always, and `rag-llm` (the gateway's routed
models, falling back to extractive) when the LLM is on. The last message is the question;
the earlier user turns are the conversation a follow-up leans on (`retrieval.condense`).
What an OpenAI reply has no field for travels in the `rag` extension object: citations,
provenance (rung, model, route, cost), `found`, and the standalone query that was searched.

Identity is the bearer credential, as everywhere (`api.security`): the body's `user` is
ignored for scoping. Errors are the API's problem+json with the status OpenAI clients map
to their exception classes (400, 401, 403, 404, 413, 422, 429, 503).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from api import errors
from api.deps import Context, answer_stream, count_tokens, generation
from api.schemas import CitationOut, ProvenanceOut
from api.security import Reader, request_context
from api.wiring import AppContext
from core.errors import InvalidRequestError, NotFoundError
from core.types import Answer, Principal, RequestContext
from retrieval.condense import standalone_query
from retrieval.service import RagService

router = APIRouter(tags=["openai"])

EXTRACTIVE, LLM = "rag-extractive", "rag-llm"
MAX_MESSAGES = 64
MAX_CONVERSATION_CHARS = 32_000
MAX_QUESTION_CHARS = 2_000
#: `created` of the model cards: when these pipelines were defined (a fixed date).
_CREATED = 1_795_000_000


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=MAX_CONVERSATION_CHARS)


class ChatMessageIn(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = Field(
        default=None, description="Text, or a list of text parts (images are not read)"
    )
    name: str | None = Field(default=None, max_length=64)

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of OpenAI's request this surface reads; other fields are accepted and
    ignored (clients send sampling knobs an extractive pipeline has no use for)."""

    model: str = Field(max_length=64, examples=[EXTRACTIVE])
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, description="Only 1 is supported")
    max_tokens: int | None = Field(default=None, ge=1, description="Ignored: see the ADR")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = Field(default=None, max_length=256, description="Not used for scope")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n not in (None, 1):
            raise ValueError("only n=1 is supported: an answer is grounded once")
        return n


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = _CREATED
    owned_by: str = "rag-template"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class RagExtension(BaseModel):
    """What an OpenAI reply has no field for."""

    found: bool
    standalone_query: str = Field(description="What was searched (a follow-up, condensed)")
    citations: list[CitationOut]
    provenance: ProvenanceOut | None
    usage_estimated: bool = Field(description="Token counts estimated (no model counted them)")


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChoiceMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    rag: RagExtension


def _models(context: AppContext) -> list[str]:
    return [EXTRACTIVE, LLM] if context.settings.llm.enabled else [EXTRACTIVE]


@router.get("/v1/models", response_model=ModelList)
async def list_models(who: Reader, context: Context) -> ModelList:
    """The answer pipelines you can name as `model`."""
    return ModelList(data=[ModelCard(id=name) for name in _models(context)])


@dataclass(frozen=True, slots=True)
class _Turn:
    """A validated request: what to search, for whom, and with which pipeline."""

    model: str
    question: str
    query: str
    scope: RequestContext
    prompt_chars: int


def _turn(body: ChatRequest, who: Principal, context: AppContext) -> _Turn:
    if body.model not in _models(context):
        raise NotFoundError(
            f"model {body.model[:64]!r} does not exist here; GET /v1/models lists "
            + ", ".join(_models(context))
        )
    last = body.messages[-1]
    if last.role != "user":
        raise InvalidRequestError("the last message must be the user's question")
    question = last.text.strip()
    if not question:
        raise InvalidRequestError("the last user message is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequestError(
            f"the question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    size = sum(len(m.text) for m in body.messages)
    if size > MAX_CONVERSATION_CHARS:
        raise InvalidRequestError(
            f"the conversation is {size} characters; the limit is {MAX_CONVERSATION_CHARS}"
        )
    earlier = [m.text for m in body.messages[:-1] if m.role == "user" and m.text.strip()]
    query = standalone_query(question, earlier)[:MAX_QUESTION_CHARS]
    return _Turn(body.model, question, query, request_context(who), size)


def _service(context: AppContext, model: str) -> RagService:
    return context.service if model == LLM else context.extractive_service


def _usage(answer: Answer, turn: _Turn) -> tuple[Usage, bool]:
    """The model's counts when a model answered; else about four characters a token."""
    p = answer.provenance
    if p is not None and (p.usage.input_tokens or p.usage.output_tokens):
        prompt, completion = p.usage.input_tokens, p.usage.output_tokens
        estimated = p.usage.estimated
    else:
        prompt, completion, estimated = turn.prompt_chars // 4, len(answer.text) // 4, True
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    ), estimated


def _extension(answer: Answer, turn: _Turn, estimated: bool) -> RagExtension:
    return RagExtension(
        found=answer.found,
        standalone_query=turn.query,
        citations=[CitationOut.of(c) for c in answer.citations],
        provenance=ProvenanceOut.of(answer.provenance) if answer.provenance else None,
        usage_estimated=estimated,
    )


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _chunk(cid: str, model: str, delta: dict[str, Any], **extra: Any) -> bytes:
    """One `chat.completion.chunk`, framed by FastAPI's SSE encoder."""
    finish = extra.pop("finish_reason", None)
    payload = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return format_sse_event(data_str=json.dumps(payload))


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(body: ChatRequest, who: Reader, context: Context) -> Response:
    """A grounded answer in OpenAI's shape (`stream: true` for chunks, then `[DONE]`), with
    citations and provenance in the `rag` extension field (on the last chunk when
    streaming)."""
    turn = _turn(body, who, context)
    service = _service(context, turn.model)
    if not body.stream:
        async with generation(context, who):
            answer = await run_in_threadpool(service.ask, turn.query, None, None, turn.scope)
        await count_tokens(context, who, answer)
        usage, estimated = _usage(answer, turn)
        completion = ChatCompletion(
            id=_completion_id(),
            created=int(time.time()),
            model=turn.model,
            choices=[Choice(message=ChoiceMessage(content=answer.text))],
            usage=usage,
            rag=_extension(answer, turn, estimated),
        )
        return JSONResponse(completion.model_dump(mode="json"))
    held = AsyncExitStack()  # held until the stream ends, not when this handler returns
    stream = await held.enter_async_context(
        answer_stream(context, who, service, turn.query, None, None, turn.scope)
    )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def chunks() -> AsyncIterator[bytes]:
        cid = _completion_id()
        try:
            yield _chunk(cid, turn.model, {"role": "assistant", "content": ""})
            event = stream.first
            while event is not None:
                if event.answer is not None:
                    await count_tokens(context, who, event.answer)
                    usage, estimated = _usage(event.answer, turn)
                    rag = _extension(event.answer, turn, estimated).model_dump(mode="json")
                    yield _chunk(cid, turn.model, {}, finish_reason="stop", rag=rag)
                    if include_usage:
                        yield _chunk_usage(cid, turn.model, usage)
                elif event.text:
                    yield _chunk(cid, turn.model, {"content": event.text})
                event = await run_in_threadpool(next, stream.events, None)
            yield format_sse_event(data_str="[DONE]")
        except Exception as exc:  # noqa: BLE001 - the status is sent: say it in the stream
            problem = errors.stream_problem(exc)
            error = {"message": problem["detail"], "type": problem["title"], "code": None}
            yield format_sse_event(data_str=json.dumps({"error": error}))
        finally:
            await held.aclose()

    return EventSourceResponse(chunks())


def _chunk_usage(cid: str, model: str, usage: Usage) -> bytes:
    """OpenAI's usage chunk (`stream_options.include_usage`): no choices, the usage."""
    payload = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage.model_dump(),
    }
    return format_sse_event(data_str=json.dumps(payload))
