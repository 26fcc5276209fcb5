"""The answer cache: a question asked before, or close enough to one, gets its answer.

Two tiers over one collection, both scoped alike (docs/adr/0027-cache-and-memory-at-size.md):

- exact repeat (`repeat`): the same question up to case, spacing, Unicode width and a
  trailing question mark. Each entry's `source` is its key (`answer-cache/<id>`, the id a
  hash of scope, corpus and normalised question); the lookup is a filter on that indexed
  field plus scope and corpus, so it needs no embedding and costs well under a millisecond;
- by meaning (`lookup`): the nearest cached question in scope, above `threshold`.

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
import unicodedata
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
    return _scope(context.tenant, context.access_groups)


def _scope(tenant: str, access_groups: Iterable[str]) -> str:
    return f"{tenant}|{','.join(sorted(set(access_groups)))}"


def normal_question(question: str) -> str:
    """The exact tier's key text: NFKC, case-folded, runs of whitespace made one space,
    trailing question marks and spaces dropped. Nothing that changes which question it
    is (words, digits, inner punctuation: "C++" is not "C") is touched."""
    folded = " ".join(unicodedata.normalize("NFKC", question).casefold().split())
    return folded.rstrip("? ")


def entry_source(entry_id: str) -> str:
    """The `source` of an entry's point: its exact-tier key (an indexed field)."""
    return f"{SOURCE}/{entry_id}"


def entry_id(scope: str, corpus: str, question: str) -> str:
    """The id of the entry for `question` in `scope` on `corpus` (`normal_question`)."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope}\n{corpus}\n{normal_question(question)}"))


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
        """One entry per scope, corpus and normalised question: a second `put` of the same
        question replaces the first, and the exact tier finds it by this id."""
        return entry_id(self.scope, self.corpus, self.question)

    def belongs(self, scope: str, corpus: str) -> bool:
        """Whether this entry may answer in `scope` on `corpus`: its scope field and the
        tenant and groups stored beside it must all say so."""
        return (
            self.scope == scope == _scope(self.tenant, self.access_groups) and self.corpus == corpus
        )

    def answer(self, question: str, similarity: float | None, stale: bool) -> Answer:
        """The cached answer served for `question`, labelled as a (stale) cache hit with
        the cost it saved; `similarity` None: an exact repeat."""
        rung = Rung.STALE_CACHE if stale else Rung.CACHE
        how = "exact repeat" if similarity is None else f"similarity {similarity:.3f}"
        provenance = Provenance(
            rung=rung,
            model=self.model,
            route=f"{rung} hit, {how}",
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
    """The stored point of an entry: the question as a chunk whose source is the entry's
    exact-tier key (`entry_source`), filter fields (`scope`, `corpus`, `cited_sources`) in
    its metadata, the answer as JSON beside them (citations are nested; the payload holds
    flat values). Entries written before the exact tier (source `SOURCE`) stay readable
    by meaning."""
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
        source=entry_source(entry.id),
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
    """`AnswerCache` on a collection of the vector store (the same engine as documents):
    exact repeats first (`repeat`), then by meaning (`lookup`)."""

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
        # The exact tier's query vector: any unit vector; its filter matches one point at
        # most, so the engine reads that point from the payload index and scores nothing.
        self._probe = QueryVector([1.0] + [0.0] * (embedder.dim - 1))

    @property
    def threshold(self) -> float:
        return self._threshold

    def embed(self, question: str) -> QueryVector:
        """The question's key: its query embedding (what the service computes once)."""
        return QueryVector(self._embedder.embed_query(question))

    def repeat(
        self, question: str, context: RequestContext, corpus: str, *, allow_stale: bool = False
    ) -> Answer | None:
        """The cached answer of this very question in scope (`normal_question`), or None:
        one indexed filter, before anything is embedded. Hits are counted and metered like
        `lookup`'s; a miss is not counted (the lookup by meaning that follows counts it)."""
        start = time.perf_counter()
        scope = scope_of(context)
        key = entry_id(scope, corpus, question)
        with stage(Stage.CACHE):
            hits = self._store.search(
                SearchQuery(
                    dense=self._probe,
                    sparse=_NO_SPARSE,
                    limit=1,
                    mode=SearchMode.DENSE,
                    filters={
                        "source": entry_source(key),
                        "meta.scope": scope,
                        "meta.corpus": corpus,
                    },
                )
            )
        for hit in hits:
            entry = from_point(hit.chunk)
            # The key hashes scope and corpus, the filter names them, and the entry says
            # them again: neither a hash collision nor a forged point crosses a scope.
            if not entry.belongs(scope, corpus) or normal_question(
                entry.question
            ) != normal_question(question):
                log.warning("answer-cache entry %s does not match its key; ignored", key)
                return None
            stale = self._clock() - entry.created_at > self._ttl_s
            if stale and not allow_stale:
                return None
            answer = entry.answer(question, None, stale)
            self._meter(answer, context, (time.perf_counter() - start) * 1000)
            count_cache(CacheResult.STALE if stale else CacheResult.HIT)
            return answer
        return None

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
        scope = scope_of(context)
        with stage(Stage.CACHE):
            hits = self._store.search(
                SearchQuery(
                    dense=self.embed(question) if vector is None else vector,
                    sparse=_NO_SPARSE,
                    limit=5,
                    mode=SearchMode.DENSE,
                    filters={"meta.scope": scope, "meta.corpus": corpus},
                )
            )
        now = self._clock()
        for hit in hits:
            if hit.score < self._threshold:
                break
            entry = from_point(hit.chunk)
            if not entry.belongs(scope, corpus):  # the filter said so; the entry must too
                log.warning("answer-cache entry %s is out of its scope; ignored", hit.chunk.id)
                continue
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
        """Drop the entries made before `moment` (retention), then `optimize`; how many.
        The cache's clock is wall time (`time.time`), as `created_at` records it."""
        old: Filters = {"meta.created_at": Below(moment.timestamp())}
        found = self._store.count(old)
        if found:
            self._store.delete(old)
        self.optimize()  # retention is the cache's maintenance pass: index the new entries
        return found

    def optimize(self) -> bool:
        """Index what was put since the last call, where the store needs telling (Qdrant
        Edge builds HNSW only when asked; a server does it in the background). Without it
        a search by meaning scans every entry in scope: 120 ms at 100k (docs/adr/0027).
        True when anything was rebuilt."""
        optimize = getattr(self._store, "optimize", None)
        return bool(optimize()) if callable(optimize) else False

    def count(self) -> int:
        """Entries in the collection (it holds nothing else)."""
        return self._store.count()

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
