"""`ChatModel` on the official `openai` SDK: OpenAI and OpenAI-compatible servers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx2
import openai

from core.errors import ProviderError
from core.types import ChatMessage, Completion, StreamChunk, Usage
from gateway.catalog import ModelSpec
from gateway.wire import (
    estimate_prompt_tokens,
    estimate_tokens,
    guard,
    guard_stream,
    reading_reply,
    translate_sdk_error,
)

#: ValueError: a 200 whose body is not JSON (a proxy's HTML page) fails the SDK's parse
#: with a JSONDecodeError; it is a malformed reply, not a bug of ours.
_ERRORS = (openai.OpenAIError, httpx2.HTTPError, ValueError)


class OpenAIChat:
    """Chat completions on OpenAI or any server that speaks its API."""

    def __init__(
        self, spec: ModelSpec, api_key: str | None, http_client: httpx2.Client | None = None
    ) -> None:
        self._spec = spec
        self._client = openai.OpenAI(
            api_key=api_key or "not-needed",  # local servers ignore it; the SDK wants one
            base_url=spec.endpoint,
            max_retries=0,
            timeout=spec.timeout_s,
            http_client=http_client,
        )

    @property
    def name(self) -> str:
        return self._spec.name

    def _translate(self, exc: Exception) -> ProviderError:
        return translate_sdk_error(self.name, exc, openai)

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self._spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def ping(self, timeout_s: float) -> None:
        """Readiness: list the server's models (no tokens spent); raises `ProviderError`."""
        guard(
            lambda: self._client.with_options(timeout=timeout_s).models.list(),
            _ERRORS,
            self._translate,
        )

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion:
        def call() -> Completion:
            reply = self._client.with_options(timeout=timeout_s).chat.completions.create(
                **self._request(messages, max_tokens)
            )
            with reading_reply(self.name):
                text = reply.choices[0].message.content
                if text is None:
                    raise ValueError("the reply has no message content")
                if reply.usage is None:
                    usage = Usage(
                        estimate_prompt_tokens(messages), estimate_tokens(text), estimated=True
                    )
                else:
                    usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens)
                return Completion(text, usage, str(reply.model))

        return guard(call, _ERRORS, self._translate)

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        return guard_stream(self._stream(messages, max_tokens, timeout_s), _ERRORS, self._translate)

    def _stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        events = self._client.with_options(timeout=timeout_s).chat.completions.create(
            **self._request(messages, max_tokens),
            stream=True,
            stream_options={"include_usage": True},
        )
        text: list[str] = []
        usage: Usage | None = None
        with events:
            for event in events:
                with reading_reply(self.name):
                    if event.usage is not None:
                        usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                    pieces = [c.delta.content for c in event.choices if c.delta.content]
                for piece in pieces:
                    text.append(piece)
                    yield StreamChunk(piece)
        if usage is None:  # a server that ignores stream_options (llama.cpp's does)
            usage = Usage(
                estimate_prompt_tokens(messages), estimate_tokens("".join(text)), estimated=True
            )
        yield StreamChunk(usage=usage)
