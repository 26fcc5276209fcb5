"""What the provider adapters share: SDK errors as `ProviderError`s, defensive reading of
replies, and the token estimate used where no tokenizer count is at hand.

The SDKs' own retries are off (`max_retries=0`): the gateway retries transient errors
with jittered backoff and falls back across models; two retry layers would multiply the
wait. Every SDK error becomes a `ProviderError` that says whether a retry can help; a
reply without the fields we need is a (non-transient) `ProviderError` too. Both SDKs
speak HTTP through httpx2 (a fork of httpx): tests hand them an `httpx2.MockTransport`.

The adapters (`openai_chat.py`, `anthropic_chat.py`) import this module; `providers.py`
imports the adapters. Nothing here imports either, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from core.errors import ProviderError
from core.types import ChatMessage, StreamChunk

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
# Shapes a malformed reply surfaces as, once the SDK has parsed it. Caught only around
# the code that reads a reply (`reading_reply`), so our own bugs stay bugs.
MALFORMED = (AttributeError, IndexError, KeyError, TypeError, ValueError)


def estimate_tokens(text: str) -> int:
    """About four characters per token in English: for a provider that omits usage, and
    for fitting a prompt into a model's context window before sending it."""
    return max(1, len(text) // 4) if text else 0


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """`estimate_tokens` over every message of a prompt."""
    return sum(estimate_tokens(m.content) for m in messages)


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


def guard(
    call: Callable[[], T],
    errors: tuple[type[BaseException], ...],
    translate: Callable[[Exception], ProviderError],
) -> T:
    """`call()`, with the SDK's `errors` raised as `translate`d `ProviderError`s."""
    try:
        return call()
    except errors as exc:
        raise translate(exc) from exc  # type: ignore[arg-type]


def guard_stream(
    events: Iterator[StreamChunk],
    errors: tuple[type[BaseException], ...],
    translate: Callable[[Exception], ProviderError],
) -> Iterator[StreamChunk]:
    """`guard` for a stream: errors raised while it is read are translated too."""
    try:
        yield from events
    except errors as exc:
        raise translate(exc) from exc  # type: ignore[arg-type]


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
