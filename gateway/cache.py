"""The semantic answer cache: a question close enough to an answered one gets its answer.

Entries live in a collection of the vector store (the same engine as the documents):
the question's dense embedding, and as payload the answer, its citations, the model that
wrote it, what it cost, the tenant+access-groups scope, the corpus version and the cited
sources. A lookup is a filtered nearest-neighbour query:

- hit only when cosine similarity >= `threshold` (docs/adr/0013: measured false hits on
  near-miss questions vs hits on paraphrases);
- only within the same scope (tenant and access groups: an answer built from documents
  one group may read never reaches another) and the same corpus version (a blue/green
  switch starts a fresh cache);
- only within `ttl_s`, except as the last rung of the degradation ladder (retrieval down),
  where a stale answer beats none and is labelled as such;
- invalidated when any cited document is re-ingested or deleted.
Each hit is written to the cost ledger with the cost it saved (the original answer's).

An entry is a `CachedAnswer`; `to_point` and `from_point` are the one mapping to and from
the stored point. The question's embedding comes from the caller (the service embeds a
question once per request and reuses it for retrieval and `put`); a caller without one
(a benchmark, a test) leaves it out and the cache embeds the question itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import LedgerError
from core.ports import Embedder, Ledger, VectorStore
from core.telemetry import CacheResult, Stage, count_cache, stage
from core.types import (
    Answer,
    Below,
    Chunk,
    Citation,
    Filters,
    IndexedChunk,
    LedgerEntry,
    Provenance,
    QueryVector,
    RequestContext,
    Rung,
    SearchMode,
    SearchQuery,
    SparseVector,
    Usage,
    document_key,
)

log = logging.getLogger(__name__)

SOURCE = "answer-cache"
_NO_SPARSE = SparseVector((), ())
_NAMESPACE = uuid.UUID("6f1b9a52-3c1e-4d7a-9b8e-2a0c5d4e7f11")


def scope_of(context: RequestContext) -> str:
    """Tenant and access groups: who may see an answer built from what they can read."""
    return f"{context.tenant}|{','.join(sorted(set(context.access_groups)))}"


def _normal(question: str) -> str:
    return " ".join(question.lower().split())


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """One cache entry: an LLM answer, who may reuse it (`scope`), for which index version
    (`corpus`), since when, and the documents it cites (`document_key`s, for invalidation)."""

    question: str
    scope: str
    tenant: str
    access_groups: tuple[str, ...]
    corpus: str
    created_at: float  # seconds, on the cache's clock
    cited_sources: tuple[str, ...]
    text: str
    found: bool
    generator: str
    citations: tuple[Citation, ...]
    model: str
    cost_usd: float
    usage: Usage
    prompt: str
    grounded: bool | None

    @classmethod
    def of(
        cls, question: str, context: RequestContext, corpus: str, answer: Answer, now: float
    ) -> CachedAnswer:
        """The entry for `answer`, asked in `context` on `corpus` at `now`."""
        provenance = answer.provenance or Provenance(
            rung=Rung.LLM, model=answer.generator, route=""
        )
        return cls(
            question=question,
            scope=scope_of(context),
            tenant=context.tenant,
            access_groups=context.access_groups,
            corpus=corpus,
            created_at=now,
            # Tenant-qualified: re-ingesting one tenant's report.md leaves the answers
            # citing another tenant's report.md alone.
            cited_sources=tuple(
                sorted({document_key(context.tenant, c.source) for c in answer.citations})
            ),
            text=answer.text,
            found=answer.found,
            generator=answer.generator,
            citations=answer.citations,
            model=provenance.model,
            cost_usd=provenance.cost_usd,
            usage=provenance.usage,
            prompt=provenance.prompt,
            grounded=provenance.grounded,
        )

    @property
    def id(self) -> str:
        """One entry per scope, corpus and question (up to case and spacing): a second
        `put` of the same question replaces the first."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.scope}\n{self.corpus}\n{_normal(self.question)}"))

    def answer(self, question: str, similarity: float, stale: bool) -> Answer:
        """The cached answer served for `question`, labelled as a (stale) cache hit with
        the cost it saved."""
        rung = Rung.STALE_CACHE if stale else Rung.CACHE
        provenance = Provenance(
            rung=rung,
            model=self.model,
            route=f"{rung} hit, similarity {similarity:.3f}",
            usage=self.usage,
            saved_usd=self.cost_usd,
            prompt=self.prompt,
            grounded=self.grounded,
        )
        return Answer(
            question,
            self.text,
            self.citations,
            found=self.found,
            generator=self.generator,
            provenance=provenance,
        )


def to_point(entry: CachedAnswer, vector: QueryVector) -> IndexedChunk:
    """The stored point of an entry: the question as a chunk of `SOURCE`, filter fields
    (`scope`, `corpus`, `cited_sources`) in its metadata, the answer as JSON beside them
    (citations are nested; the payload holds flat values). Earlier versions wrote the same
    layout, so their entries stay readable."""
    answer = {
        "text": entry.text,
        "found": entry.found,
        "generator": entry.generator,
        "citations": [dataclasses.asdict(c) for c in entry.citations],
        "model": entry.model,
        "cost_usd": entry.cost_usd,
        "usage": [entry.usage.input_tokens, entry.usage.output_tokens],
        "prompt": entry.prompt,
        "grounded": entry.grounded,
    }
    chunk = Chunk(
        id=entry.id,
        source=SOURCE,
        text=entry.question,
        title="",
        section="",
        page=None,
        index=0,
        content_hash=entry.id,
        tenant=entry.tenant,
        access_groups=entry.access_groups,
        metadata={
            "scope": entry.scope,
            "corpus": entry.corpus,
            "created_at": entry.created_at,
            "cited_sources": list(entry.cited_sources),
            "answer": json.dumps(answer),
        },
    )
    return IndexedChunk(chunk, vector, _NO_SPARSE)


def from_point(chunk: Chunk) -> CachedAnswer:
    """The entry a stored point holds: the inverse of `to_point`."""
    meta = chunk.metadata
    answer: dict[str, Any] = json.loads(str(meta["answer"]))
    created_at = meta["created_at"]
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        raise ValueError(f"answer-cache entry {chunk.id}: created_at is {created_at!r}")
    cited = meta.get("cited_sources", [])
    return CachedAnswer(
        question=chunk.text,
        scope=str(meta["scope"]),
        tenant=chunk.tenant,
        access_groups=chunk.access_groups,
        corpus=str(meta["corpus"]),
        created_at=float(created_at),
        cited_sources=tuple(cited) if isinstance(cited, list) else (),
        text=str(answer["text"]),
        found=bool(answer["found"]),
        generator=str(answer["generator"]),
        citations=tuple(Citation(**c) for c in answer["citations"]),
        model=str(answer["model"]),
        cost_usd=float(answer["cost_usd"]),
        usage=Usage(*answer["usage"]),
        prompt=str(answer["prompt"]),
        grounded=answer["grounded"],
    )


class SemanticCache:
    """`AnswerCache` on a collection of the vector store (the same engine as documents)."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        threshold: float,
        ttl_s: float,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._threshold = threshold
        self._ttl_s = ttl_s
        self._ledger = ledger
        self._clock = clock
        store.ensure_collection(embedder.dim)

    @property
    def threshold(self) -> float:
        return self._threshold

    def embed(self, question: str) -> QueryVector:
        """The question's key: its query embedding (what the service computes once)."""
        return QueryVector(self._embedder.embed_query(question))

    def lookup(
        self,
        question: str,
        context: RequestContext,
        corpus: str,
        *,
        vector: QueryVector | None = None,
        allow_stale: bool = False,
    ) -> Answer | None:
        """The cached answer of the closest question in scope, or None; `vector` is the
        question's embedding, computed here when left out."""
        start = time.perf_counter()
        with stage(Stage.CACHE):
            hits = self._store.search(
                SearchQuery(
                    dense=self.embed(question) if vector is None else vector,
                    sparse=_NO_SPARSE,
                    limit=5,
                    mode=SearchMode.DENSE,
                    filters={"meta.scope": scope_of(context), "meta.corpus": corpus},
                )
            )
        now = self._clock()
        for hit in hits:
            if hit.score < self._threshold:
                break
            entry = from_point(hit.chunk)
            stale = now - entry.created_at > self._ttl_s
            if stale and not allow_stale:
                continue
            answer = entry.answer(question, hit.score, stale)
            self._meter(answer, context, (time.perf_counter() - start) * 1000)
            count_cache(CacheResult.STALE if stale else CacheResult.HIT)
            return answer
        count_cache(CacheResult.MISS)
        return None

    def put(
        self,
        question: str,
        context: RequestContext,
        corpus: str,
        answer: Answer,
        *,
        vector: QueryVector | None = None,
    ) -> None:
        """Cache an LLM answer (the costly kind) with what it cites, for invalidation.
        `vector` is the embedding the missed lookup used; computed here when left out."""
        entry = CachedAnswer.of(question, context, corpus, answer, self._clock())
        point = to_point(entry, self.embed(question) if vector is None else vector)
        self._store.upsert([point])

    def invalidate(self, sources: Iterable[str]) -> None:
        """Drop every answer that cites any of `sources` (`document_key`s: re-ingested or
        deleted documents)."""
        wanted = sorted(set(sources))
        if wanted:
            self._store.delete({"meta.cited_sources": wanted})

    def purge_before(self, moment: datetime) -> int:
        """Drop the entries made before `moment` (retention); how many. The cache's clock
        is wall time (`time.time`), as `created_at` records it."""
        old: Filters = {"source": SOURCE, "meta.created_at": Below(moment.timestamp())}
        found = self._store.count(old)
        if found:
            self._store.delete(old)
        return found

    def count(self) -> int:
        return self._store.count({"source": SOURCE})

    def close(self) -> None:
        self._store.close()

    def _meter(self, answer: Answer, context: RequestContext, ms: float) -> None:
        if self._ledger is None or answer.provenance is None:
            return
        try:
            self._record(answer, context, ms)
        except LedgerError as exc:  # the hit is served; only its saving goes unrecorded
            log.error("cache hit not recorded in the ledger: %s", exc)

    def _record(self, answer: Answer, context: RequestContext, ms: float) -> None:
        assert self._ledger is not None
        assert answer.provenance is not None
        self._ledger.record(
            LedgerEntry(
                at=datetime.now(UTC),
                tenant=context.tenant,
                model=answer.provenance.model,
                rung=answer.provenance.rung,
                saved_usd=answer.provenance.saved_usd,
                saved_tokens=answer.provenance.usage.input_tokens
                + answer.provenance.usage.output_tokens,
                latency_ms=ms,
                route=answer.provenance.route,
            )
        )
