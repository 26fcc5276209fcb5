"""Deterministic stand-ins that implement the ports (no model, no I/O)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from core.errors import IngestError, InvalidRequestError, ProviderError, SchemaMismatchError
from core.types import (
    Answer,
    ChatMessage,
    Chunk,
    Citation,
    Completion,
    Element,
    Filters,
    IndexedChunk,
    ParsedDocument,
    Provenance,
    RequestContext,
    Rung,
    Scope,
    ScoredChunk,
    SearchMode,
    SearchQuery,
    SparseVector,
    StreamChunk,
    Usage,
)
from gateway.catalog import ModelSpec
from store.schema import filter_terms, to_payload


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


class LineParser:
    """A `Parser` without the document libraries: each non-blank line is one paragraph.
    Picklable, and quick to start in a parse pool's worker."""

    def parse(self, path: str, source: str | None = None) -> ParsedDocument:
        data = Path(path).read_bytes()
        lines = [line.strip() for line in data.decode().splitlines() if line.strip()]
        if not lines:
            raise IngestError(f"{path}: the file is empty")
        elements = tuple(Element(line, "NarrativeText") for line in lines)
        digest = hashlib.sha256(data).hexdigest()
        return ParsedDocument(source or Path(path).name, lines[0], elements, digest)


class MemoryStore:
    """A `VectorStore` in a dict, recording what it was asked (`queries`, `writes`: the
    size of each upsert, `deletes`: each `delete_by_source` call).

    Filters and scopes follow the plan the real adapters translate (`store.schema`). The
    ranking is a plain sum of the dense and the sparse dot products, not the engine's
    fusion: ranking behaviour belongs to the contract suite. `fail_on_write=n` makes the
    n-th upsert (from 0) raise, as a full disk would.
    """

    def __init__(self, fail_on_write: int | None = None) -> None:
        self.dim: int | None = None
        self.points: dict[str, IndexedChunk] = {}
        self.queries: list[SearchQuery] = []
        self.writes: list[int] = []
        self.deletes: list[tuple[str, str, tuple[str, ...]]] = []
        self._fail_on_write = fail_on_write

    def ensure_collection(self, dim: int) -> None:
        if self.dim is not None and self.dim != dim:
            raise SchemaMismatchError(f"the store holds {self.dim}-d vectors, not {dim}-d")
        self.dim = dim

    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        if self._fail_on_write == len(self.writes):
            raise RuntimeError("disk full")
        self.writes.append(len(points))
        self.points.update({p.chunk.id: p for p in points})

    def search(self, query: SearchQuery) -> list[ScoredChunk]:
        self.queries.append(query)
        if query.mode is not SearchMode.SPARSE and query.dense is None:
            raise InvalidRequestError(f"a {query.mode} search needs a dense query vector")
        hits = [
            ScoredChunk(point.chunk, _score(point, query))
            for point in self.points.values()
            if _matches(point, query.filters, query.scope)
        ]
        hits.sort(key=lambda hit: -hit.score)  # stable: ties keep the upsert order
        return hits[: query.limit]

    def delete_by_source(self, tenant: str, source: str, keep_ids: Sequence[str] = ()) -> None:
        self.deletes.append((tenant, source, tuple(keep_ids)))
        for point_id, point in list(self.points.items()):
            chunk = point.chunk
            if (chunk.tenant, chunk.source) == (tenant, source) and point_id not in keep_ids:
                del self.points[point_id]

    def delete(self, filters: Filters) -> None:
        for point_id, point in list(self.points.items()):
            if _matches(point, filters):
                del self.points[point_id]

    def count(self, filters: Filters | None = None) -> int:
        return sum(_matches(point, filters) for point in self.points.values())

    def close(self) -> None:
        pass


def _matches(point: IndexedChunk, filters: Filters | None, scope: Scope | None = None) -> bool:
    payload = to_payload(point.chunk)
    for key, wanted in filter_terms(filters, scope):
        value: Any = payload
        for part in key.split("."):  # `meta.cited_sources` reads payload["meta"][...]
            value = value.get(part) if isinstance(value, dict) else None
        held = set(value) if isinstance(value, list) else {value}
        if held.isdisjoint(wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def _score(point: IndexedChunk, query: SearchQuery) -> float:
    score = 0.0
    if query.mode is not SearchMode.SPARSE and query.dense is not None:
        score += sum(a * b for a, b in zip(point.dense, query.dense, strict=True))
    if query.mode is not SearchMode.DENSE:
        score += _sparse_dot(point.sparse, query.sparse)
    return score


def _sparse_dot(a: SparseVector, b: SparseVector) -> float:
    weights = dict(zip(a.indices, a.values, strict=True))
    return sum(weights.get(i, 0.0) * v for i, v in zip(b.indices, b.values, strict=True))


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


class GroundedLlm:
    """An "LLM" whose answers are grounded and cited: the kind the answer cache keeps.

    It quotes the first passage it is given (or, given none, a placeholder in `source`)
    and cites it, so a test can see whose documents an answer was built from.
    """

    def __init__(self, source: str = "ids.md") -> None:
        self._source = source

    @property
    def name(self) -> str:
        return "fake-llm"

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer:
        chunk = (
            passages[0].chunk
            if passages
            else Chunk("id-1", self._source, "Ids are uuid5 hashes.", "", "", None, 0, "h")
        )
        return Answer(
            question,
            f"{chunk.text} [1]",
            (Citation.of(1, chunk),),
            True,
            self.name,
            tuple(passages),
            provenance=Provenance(Rung.LLM, self.name, "r", usage=Usage(10, 5), grounded=True),
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

    def ping(self, timeout_s: float) -> None:
        """Up unless the next step of the script is an error."""
        step = self._script[min(self.calls + 1, len(self._script)) - 1]
        if isinstance(step, Exception):
            raise step

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
