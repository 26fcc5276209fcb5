"""Provider adapters behind the `ChatModel` port, on the providers' own SDKs.

- `gateway.openai_chat.OpenAIChat`: OpenAI, and every OpenAI-compatible server (vLLM,
  Ollama, LM Studio, llama.cpp's server) through `base_url`.
- `gateway.anthropic_chat.AnthropicChat`: Anthropic's Messages API.

Why the SDKs and not LiteLLM or LangChain chat models: docs/adr/0011 (import time,
per-call overhead, offline behaviour, measured). Each adapter module is imported only
when a model of its provider is configured (`import anthropic` alone takes ~2 s).

The SDKs' own retries are off (`max_retries=0`): the gateway retries transient errors
with jittered backoff and falls back across models; two retry layers would multiply the
wait. Every SDK error becomes a `ProviderError` that says whether a retry can help; a
reply without the fields we need is a (non-transient) `ProviderError` too. Both SDKs
speak HTTP through httpx2 (a fork of httpx): tests hand them an `httpx2.MockTransport`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import ConfigError, ProviderError
from core.settings import LlmSettings
from core.types import StreamChunk
from gateway.catalog import ModelSpec

if TYPE_CHECKING:
    import httpx2

    from core.ports import ChatModel

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Shapes a malformed reply surfaces as, once the SDK has parsed it. Caught only around
# the code that reads a reply (`reading_reply`), so our own bugs stay bugs.
MALFORMED = (AttributeError, IndexError, KeyError, TypeError, ValueError)


@contextmanager
def reading_reply(name: str) -> Iterator[None]:
    """Reading fields of a provider's reply: a missing or mistyped field is the provider's
    malformed reply (not transient: the next model is tried), not our error."""
    try:
        yield
    except MALFORMED as exc:
        raise ProviderError(
            f"{name}: malformed reply ({type(exc).__name__}: {exc})"[:500], transient=False
        ) from exc


def is_transient_status(status: int) -> bool:
    """429 and 5xx (and request timeouts) are worth a retry; other 4xx never are."""
    return status in TRANSIENT_STATUS or status >= 500


def estimate_tokens(text: str) -> int:
    """About four characters per token in English; used only when a provider omits usage."""
    return max(1, len(text) // 4) if text else 0


def guard(
    call: Callable[[], T],
    errors: tuple[type[BaseException], ...],
    translate: Callable[[Exception], ProviderError],
) -> T:
    try:
        return call()
    except errors as exc:
        raise translate(exc) from exc  # type: ignore[arg-type]


def guard_stream(
    events: Iterator[StreamChunk],
    errors: tuple[type[BaseException], ...],
    translate: Callable[[Exception], ProviderError],
) -> Iterator[StreamChunk]:
    try:
        yield from events
    except errors as exc:
        raise translate(exc) from exc  # type: ignore[arg-type]


def build_chat_model(
    spec: ModelSpec, settings: LlmSettings, http_client: httpx2.Client | None = None
) -> ChatModel:
    """The adapter for a catalog entry, with its key from settings (never from os.environ)."""
    endpoint = settings.endpoints.get(spec.name)
    if endpoint:
        spec = spec.model_copy(update={"endpoint": endpoint})
    if spec.provider == "anthropic":
        from gateway.anthropic_chat import AnthropicChat

        key = settings.anthropic_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__ANTHROPIC_API_KEY")
        return AnthropicChat(spec, key.get_secret_value(), http_client)
    from gateway.openai_chat import OpenAIChat

    if spec.provider == "openai":
        key = settings.openai_api_key
        if key is None:
            raise ConfigError(f"{spec.name} needs RAG_LLM__OPENAI_API_KEY")
        return OpenAIChat(spec, key.get_secret_value(), http_client)
    return OpenAIChat(spec, None, http_client)


def translate_sdk_error(name: str, exc: Exception, sdk: Any) -> ProviderError:
    """An `openai` or `anthropic` SDK error (same exception tree) as a ProviderError.

    `sdk` is the SDK module; errors raised by httpx2 while a stream is read come too.
    """
    import httpx2

    if isinstance(exc, sdk.APITimeoutError | httpx2.TimeoutException):
        return ProviderError(f"{name}: timed out", transient=True)
    if isinstance(exc, sdk.APIConnectionError | httpx2.HTTPError):
        return ProviderError(f"{name}: cannot connect ({exc.__cause__ or exc})", transient=True)
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code  # Anthropic's 529 "overloaded" is a 5xx: transient
        return ProviderError(
            f"{name}: HTTP {status} {exc.message}"[:500],
            transient=is_transient_status(status),
            status=status,
        )
    return ProviderError(f"{name}: malformed reply ({type(exc).__name__}: {exc})", transient=False)
