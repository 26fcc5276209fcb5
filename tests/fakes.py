"""Deterministic stand-ins that implement the ports (no model, no I/O)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from core.types import Answer, RequestContext, ScoredChunk


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
