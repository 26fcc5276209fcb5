"""Deterministic stand-ins that implement the ports (no model, no I/O)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence

from core.errors import ProviderError
from core.types import (
    Answer,
    ChatMessage,
    Completion,
    RequestContext,
    ScoredChunk,
    StreamChunk,
    Usage,
)
from gateway.catalog import ModelSpec


class HashEmbedder:
    """Bag-of-words hashed into `dim` buckets: texts sharing words get similar vectors."""

    def __init__(self, dim: int = 32) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self._dim
        for word in re.findall(r"\w+", text.lower()):
            bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self._dim
            vector[bucket] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


class EchoGenerator:
    """Returns the question and the ids of the passages it was given."""

    @property
    def name(self) -> str:
        return "echo"

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer:
        return Answer(
            question,
            " ".join(p.chunk.id for p in passages),
            (),
            bool(passages),
            self.name,
            tuple(passages),
        )


class ScriptedChatModel:
    """A `ChatModel` that plays a script: each call takes the next reply or raises the next
    error. `break_after` makes a stream fail after that many tokens (0: before the first).
    """

    def __init__(
        self,
        name: str,
        script: Sequence[str | Exception],
        usage: tuple[int, int] = (1000, 100),
        break_after: int | None = None,
    ) -> None:
        self._name = name
        self._script = list(script)
        self._usage = usage
        self._break_after = break_after
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    def _next(self) -> str:
        self.calls += 1
        step = self._script[min(self.calls, len(self._script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion:
        return Completion(self._next(), Usage(*self._usage))

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        text = self._next()
        for i, token in enumerate(re.findall(r"\S+\s*", text)):
            if self._break_after is not None and i >= self._break_after:
                raise ProviderError(f"{self._name}: connection reset", transient=True)
            yield StreamChunk(token)
        yield StreamChunk(usage=Usage(*self._usage))


def model_spec(name: str, price: float, *tags: str, output_ratio: float = 1.0) -> ModelSpec:
    """A catalog entry at a closed local port; `price` USD per 1M input tokens."""
    return ModelSpec(
        name=name,
        provider="openai-compatible",
        model=name,
        endpoint="http://127.0.0.1:1/v1",
        context_window=8192,
        input_per_mtok=price,
        output_per_mtok=price * output_ratio,
        tags=frozenset(tags),
    )
