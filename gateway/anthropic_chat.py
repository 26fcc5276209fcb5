"""`ChatModel` on the official `anthropic` SDK (the Messages API)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import anthropic
import httpx2

from core.errors import ProviderError
from core.types import ChatMessage, Completion, StreamChunk, Usage
from gateway.catalog import ModelSpec
from gateway.wire import guard, guard_stream, reading_reply, translate_sdk_error

#: ValueError: a body that is not JSON fails the SDK's parse (see openai_chat).
_ERRORS = (anthropic.AnthropicError, httpx2.HTTPError, ValueError)


class AnthropicChat:
    """Anthropic's Messages API; the system prompt travels outside the message list."""

    def __init__(
        self, spec: ModelSpec, api_key: str | None, http_client: httpx2.Client | None = None
    ) -> None:
        self._spec = spec
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=spec.endpoint,
            max_retries=0,
            timeout=spec.timeout_s,
            http_client=http_client,
        )

    @property
    def name(self) -> str:
        return self._spec.name

    def _translate(self, exc: Exception) -> ProviderError:
        return translate_sdk_error(self.name, exc, anthropic)

    def ping(self, timeout_s: float) -> None:
        """Readiness: list one model (no tokens spent); raises `ProviderError`."""
        guard(
            lambda: self._client.with_options(timeout=timeout_s).models.list(limit=1),
            _ERRORS,
            self._translate,
        )

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        request: dict[str, Any] = {
            "model": self._spec.model,
            "max_tokens": max_tokens,  # no `temperature`: the current SDK has no such field
            "messages": [
                {"role": m.role, "content": m.content} for m in messages if m.role != "system"
            ],
        }
        if system:
            request["system"] = system
        return request

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion:
        def call() -> Completion:
            reply = self._client.with_options(timeout=timeout_s).messages.create(
                **self._request(messages, max_tokens)
            )
            with reading_reply(self.name):
                text = "".join(block.text for block in reply.content if block.type == "text")
                usage = Usage(reply.usage.input_tokens, reply.usage.output_tokens)
                return Completion(text, usage, str(reply.model))

        return guard(call, _ERRORS, self._translate)

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        return guard_stream(self._stream(messages, max_tokens, timeout_s), _ERRORS, self._translate)

    def _stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        events = self._client.with_options(timeout=timeout_s).messages.create(
            **self._request(messages, max_tokens), stream=True
        )
        input_tokens = output_tokens = 0
        with events:
            for event in events:
                piece = ""
                with reading_reply(self.name):
                    if event.type == "message_start":
                        input_tokens = event.message.usage.input_tokens
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        piece = event.delta.text
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens
                        # The current API repeats input tokens here; older replies only at start.
                        input_tokens = getattr(event.usage, "input_tokens", None) or input_tokens
                if piece:
                    yield StreamChunk(piece)
        yield StreamChunk(usage=Usage(input_tokens, output_tokens))
