"""Ports: the small interfaces behind which every replaceable part sits.

Adapters live beside the room that owns them (`ingest/embed.py`, `store/edge.py`,
`store/remote.py`, `retrieval/extractive.py`); `api/wiring.py` picks them from settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.types import (
    Answer,
    AnswerEvent,
    ChatMessage,
    Completion,
    Filters,
    IndexedChunk,
    IngestJob,
    IngestProgress,
    JobState,
    JobStatus,
    LedgerEntry,
    ListedRow,
    ParsedDocument,
    QueryVector,
    RequestContext,
    ScoredChunk,
    SearchQuery,
    SourceRecord,
    StreamChunk,
)
from core.types import SparseVector as SparseVec


@runtime_checkable
class Embedder(Protocol):
    """Dense text embeddings; documents and queries may be encoded differently."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@runtime_checkable
class SparseEncoder(Protocol):
    """Sparse lexical vectors (BM25); the engine applies IDF at query time."""

    @property
    def name(self) -> str: ...

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVec]: ...

    def encode_query(self, text: str) -> SparseVec: ...


@runtime_checkable
class VectorStore(Protocol):
    """A collection of chunks with a dense and a sparse vector each."""

    def ensure_collection(self, dim: int) -> None:
        """Create the collection, or check that an existing one fits this embedder."""
        ...

    def upsert(self, points: Sequence[IndexedChunk]) -> None: ...

    def search(self, query: SearchQuery) -> list[ScoredChunk]: ...

    def delete_by_source(self, tenant: str, source: str, keep_ids: Sequence[str] = ()) -> None:
        """Delete a tenant's document's points, except `keep_ids` (its new version's chunks)."""
        ...

    def delete(self, filters: Filters) -> None:
        """Delete every point matching `filters` (a list value matches any of its items)."""
        ...

    def count(self, filters: Filters | None = None) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class Parser(Protocol):
    """Turns one file into elements; raises IngestError for anything it cannot read."""

    def parse(self, path: str, source: str | None = None) -> ParsedDocument: ...


@runtime_checkable
class Reranker(Protocol):
    """Re-scores retrieved chunks against the query (a cross-encoder, typically)."""

    @property
    def name(self) -> str: ...

    def rerank(self, query: str, hits: Sequence[ScoredChunk], top_k: int) -> list[ScoredChunk]: ...


@runtime_checkable
class Generator(Protocol):
    """Writes an answer from retrieved passages. The LLM gateway plugs in here."""

    @property
    def name(self) -> str: ...

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer: ...


@runtime_checkable
class StreamingGenerator(Generator, Protocol):
    """A generator that can also stream its answer: tokens first, then the whole answer."""

    def stream(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Iterator[AnswerEvent]: ...


@runtime_checkable
class ChatModel(Protocol):
    """One provider's chat endpoint. Adapters raise `ProviderError`, marked transient or not."""

    @property
    def name(self) -> str: ...

    def ping(self, timeout_s: float) -> None:
        """Is the provider there? A call that spends no tokens (readiness probes)."""
        ...

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion: ...

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]: ...


@runtime_checkable
class AnswerCache(Protocol):
    """Answers to earlier questions, found as exact repeats or by meaning, scoped by who
    may read them.

    `repeat` finds the same question (up to case and spacing) without an embedding: the
    caller asks it first and embeds only on a miss. By meaning, entries are matched on the
    question's embedding, so the embedding is part of the key, not a hint: the caller
    passes it (`vector`, from the same query embedder as retrieval,
    computed once per request) to `lookup` and, after a miss, to `put`; the service also
    retrieves with it. Entries are scoped by `context` (tenant and groups) and `corpus`
    (the index version), and die when a document they cite changes (`invalidate`).
    """

    def repeat(
        self, question: str, context: RequestContext, corpus: str, *, allow_stale: bool = False
    ) -> Answer | None:
        """The answer of this very question in scope, or None; nothing is embedded."""
        ...

    def lookup(
        self,
        question: str,
        context: RequestContext,
        corpus: str,
        *,
        vector: QueryVector,
        allow_stale: bool = False,
    ) -> Answer | None:
        """The answer of the closest cached question in scope, or None. `allow_stale`
        also serves an expired entry (the last rung, when retrieval is down)."""
        ...

    def put(
        self,
        question: str,
        context: RequestContext,
        corpus: str,
        answer: Answer,
        *,
        vector: QueryVector,
    ) -> None: ...

    def invalidate(self, sources: Iterable[str]) -> None:
        """Drop every answer citing any of `sources` (`document_key`s)."""
        ...


@runtime_checkable
class Ledger(Protocol):
    """The cost ledger: one row per answered request, summed for budgets and reports."""

    def record(self, entry: LedgerEntry) -> None: ...

    def spent(self, tenant: str, since: datetime) -> float:
        """US dollars spent by `tenant` since `since` (UTC)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Manifest(Protocol):
    """What each document (tenant + source) looked like when it was last indexed.

    A write is `begin` (its new chunk ids, before any point is touched) then `commit`
    (after its stale points are deleted): a run that dies in between leaves a `pending`
    row that the next run redoes. Rows belong to one collection (the adapter's).
    """

    def get(self, tenant: str, source: str) -> SourceRecord | None: ...

    def sources(self, tenant: str) -> list[SourceRecord]:
        """The tenant's documents, by source id."""
        ...

    def begin(
        self,
        tenant: str,
        source: str,
        content_hash: str,
        chunk_ids: list[str],
        title: str | None = None,
        access_groups: Sequence[str] = (),
    ) -> None: ...

    def commit(
        self,
        tenant: str,
        source: str,
        content_hash: str,
        chunk_ids: list[str],
        title: str | None = None,
        access_groups: Sequence[str] = (),
    ) -> None: ...

    def page(
        self,
        tenant: str,
        readers: Sequence[str] | None,
        after: str | None,
        limit: int,
        offset: int = 0,
    ) -> tuple[list[ListedRow], int]:
        """The tenant's documents after source `after` and how many there are in all;
        with `readers`, only those open to the whole tenant or to one of the groups."""
        ...

    def older_than(self, before: datetime) -> list[tuple[str, str]]:
        """(tenant, source) of the rows last written before `before` (retention)."""
        ...

    def remove(self, tenant: str, source: str) -> None: ...

    def close(self) -> None: ...


#: Hears an ingest run's progress (files, chunks embedded) as it moves.
ProgressSink = Callable[[IngestProgress], None]
#: What a queue runs for each job: the job, and where to report its progress.
JobHandler = Callable[[IngestJob, ProgressSink], JobStatus]


@runtime_checkable
class JobQueue(Protocol):
    """Background ingest jobs: at-least-once, retried with backoff, dead-lettered at last.

    Jobs must be idempotent (ours are: deterministic chunk ids + the manifest). A running
    job's status carries its progress, updated as its chunks are embedded.
    """

    def submit(self, job: IngestJob) -> str: ...

    def status(self, job_id: str) -> JobStatus | None: ...

    def dead_letters(self) -> list[str]: ...

    def counts(self) -> dict[JobState, int]:
        """Jobs by state (queued and running now; terminal ones since the counts began),
        for metrics and readiness: it touches the backend, so it fails when that is down."""
        ...

    def start_worker(self, threads: int = 1) -> None:
        """Consume jobs in this process (`rag worker`). A queue whose worker already runs
        inside the API process refuses with a `ConfigError` that says so."""
        ...

    def close(self) -> None: ...
