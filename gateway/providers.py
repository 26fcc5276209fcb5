"""Provider adapters behind the `ChatModel` port, on the providers' own SDKs.

- `OpenAIChat`: OpenAI, and every OpenAI-compatible server (vLLM, Ollama, LM Studio,
  llama.cpp's server) through `base_url`.
- `AnthropicChat`: Anthropic's Messages API.

The SDKs' own retries are off (`max_retries=0`): the gateway retries transient errors with
jittered backoff and falls back across models, and two retry layers would multiply the
wait. Every SDK error becomes a `ProviderError` that says whether a retry can help; a
reply without the fields we need is a (non-transient) `ProviderError` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anthropic
import httpx2
import openai

from core.errors import ConfigError, ProviderError
from core.settings import LlmSettings
from core.types import ChatMessage, Completion, StreamChunk, Usage
from gateway.catalog import ModelSpec

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


def is_transient_status(status: int) -> bool:
    """429 and 5xx (and request timeouts) are worth a retry; other 4xx never are."""
    return status in TRANSIENT_STATUS or status >= 500


def estimate_tokens(text: str) -> int:
    """About four characters per token in English; used only when a provider omits usage."""
    return max(1, len(text) // 4) if text else 0


def _translate(name: str, exc: Exception) -> ProviderError:
    if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return ProviderError(f"{name}: timed out", transient=True)
    if isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return ProviderError(f"{name}: cannot connect ({exc.__cause__ or exc})", transient=True)
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        status = exc.status_code
        return ProviderError(
            f"{name}: HTTP {status} {exc.message}"[:500],
            transient=is_transient_status(status),
            status=status,
        )
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(f"{name}: timed out while streaming", transient=True)
    if isinstance(exc, httpx2.HTTPError):
        return ProviderError(f"{name}: connection failed ({exc})", transient=True)
    return ProviderError(f"{name}: malformed reply ({type(exc).__name__}: {exc})", transient=False)


_SDK_ERRORS = (
    openai.OpenAIError,
    anthropic.AnthropicError,
    httpx2.HTTPError,
    AttributeError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
)


def _guard(name: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except _SDK_ERRORS as exc:
        raise _translate(name, exc) from exc


def _guarded_stream(name: str, events: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
    try:
        yield from events
    except _SDK_ERRORS as exc:
        raise _translate(name, exc) from exc


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

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        return {
            "model": self._spec.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0,
        }

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion:
        def call() -> Completion:
            reply = self._client.with_options(timeout=timeout_s).chat.completions.create(
                **self._request(messages, max_tokens)
            )
            text = reply.choices[0].message.content
            if text is None:
                raise ValueError("the reply has no message content")
            if reply.usage is None:
                usage = Usage(
                    sum(estimate_tokens(m.content) for m in messages),
                    estimate_tokens(text),
                    estimated=True,
                )
            else:
                usage = Usage(reply.usage.prompt_tokens, reply.usage.completion_tokens)
            return Completion(text, usage, reply.model)

        result: Completion = _guard(self.name, call)
        return result

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        return _guarded_stream(self.name, self._stream(messages, max_tokens, timeout_s))

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
                if event.usage is not None:
                    usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                for choice in event.choices:
                    if choice.delta.content:
                        text.append(choice.delta.content)
                        yield StreamChunk(choice.delta.content)
        if usage is None:  # a server that ignores stream_options
            usage = Usage(
                sum(estimate_tokens(m.content) for m in messages),
                estimate_tokens("".join(text)),
                estimated=True,
            )
        yield StreamChunk(usage=usage)


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

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        request: dict[str, Any] = {
            "model": self._spec.model,
            "max_tokens": max_tokens,
            "temperature": 0,
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
            text = "".join(block.text for block in reply.content if block.type == "text")
            usage = Usage(reply.usage.input_tokens, reply.usage.output_tokens)
            return Completion(text, usage, reply.model)

        result: Completion = _guard(self.name, call)
        return result

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        return _guarded_stream(self.name, self._stream(messages, max_tokens, timeout_s))

    def _stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        events = self._client.with_options(timeout=timeout_s).messages.create(
            **self._request(messages, max_tokens), stream=True
        )
        input_tokens = output_tokens = 0
        with events:
            for event in events:
                if event.type == "message_start":
                    input_tokens = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield StreamChunk(event.delta.text)
                elif event.type == "message_delta":
                    output_tokens = event.usage.output_tokens
        yield StreamChunk(usage=Usage(input_tokens, output_tokens))


def build_chat_model(
    spec: ModelSpec, settings: LlmSettings, http_client: httpx2.Client | None = None
) -> OpenAIChat | AnthropicChat:
    """The adapter for a catalog entry, with its key from settings (never from os.environ)."""
    endpoint = settings.endpoints.get(spec.name)
    if endpoint:
        spec = spec.model_copy(update={"endpoint": endpoint})
    if spec.provider == "anthropic":
        key = settings.anthropic_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__ANTHROPIC_API_KEY")
        return AnthropicChat(spec, key.get_secret_value(), http_client)
    if spec.provider == "openai":
        key = settings.openai_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__OPENAI_API_KEY")
        return OpenAIChat(spec, key.get_secret_value(), http_client)
    return OpenAIChat(spec, None, http_client)
