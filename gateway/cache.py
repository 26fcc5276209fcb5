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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from core.errors import LedgerError
from core.ports import Embedder, Ledger, VectorStore
from core.types import (
    Answer,
    Chunk,
    Citation,
    IndexedChunk,
    LedgerEntry,
    Provenance,
    RequestContext,
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


class SemanticCache:
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

    def lookup(
        self,
        question: str,
        context: RequestContext,
        corpus: str,
        *,
        allow_stale: bool = False,
        vector: list[float] | None = None,
    ) -> Answer | None:
        """The cached answer of the closest question in scope, or None."""
        start = time.perf_counter()
        vector = vector or self._embedder.embed_query(question)
        hits = self._store.search(
            SearchQuery(
                dense=vector,
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
            meta = hit.chunk.metadata
            age = now - float(meta["created_at"])  # type: ignore[arg-type]
            stale = age > self._ttl_s
            if stale and not allow_stale:
                continue
            answer = _decode(str(meta["answer"]), question, hit.score, stale)
            self._meter(answer, context, (time.perf_counter() - start) * 1000)
            return answer
        return None

    def put(self, question: str, context: RequestContext, corpus: str, answer: Answer) -> None:
        """Cache an LLM answer (the costly kind) with what it cites, for invalidation."""
        scope = scope_of(context)
        key = str(uuid.uuid5(_NAMESPACE, f"{scope}\n{corpus}\n{_normal(question)}"))
        chunk = Chunk(
            id=key,
            source=SOURCE,
            text=question,
            title="",
            section="",
            page=None,
            index=0,
            content_hash=key,
            tenant=context.tenant,
            access_groups=context.access_groups,
            metadata={
                "scope": scope,
                "corpus": corpus,
                "created_at": self._clock(),
                # Tenant-qualified: re-ingesting one tenant's report.md leaves the
                # answers citing another tenant's report.md alone.
                "cited_sources": sorted(
                    {document_key(context.tenant, c.source) for c in answer.citations}
                ),
                "answer": _encode(answer),
            },
        )
        vector = self._embedder.embed_query(question)
        self._store.upsert([IndexedChunk(chunk, vector, _NO_SPARSE)])

    def invalidate(self, sources: Iterable[str]) -> None:
        """Drop every answer that cites any of `sources` (`document_key`s: re-ingested or
        deleted documents)."""
        wanted = sorted(set(sources))
        if wanted:
            self._store.delete({"meta.cited_sources": wanted})

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


def _encode(answer: Answer) -> str:
    provenance = answer.provenance or Provenance(rung="llm", model=answer.generator, route="")
    return json.dumps(
        {
            "text": answer.text,
            "found": answer.found,
            "generator": answer.generator,
            "citations": [dataclasses.asdict(c) for c in answer.citations],
            "model": provenance.model,
            "cost_usd": provenance.cost_usd,
            "usage": [provenance.usage.input_tokens, provenance.usage.output_tokens],
            "prompt": provenance.prompt,
            "grounded": provenance.grounded,
        }
    )


def _decode(raw: str, question: str, similarity: float, stale: bool) -> Answer:
    data: dict[str, Any] = json.loads(raw)
    rung = "stale-cache" if stale else "cache"
    provenance = Provenance(
        rung=rung,
        model=str(data["model"]),
        route=f"{rung} hit, similarity {similarity:.3f}",
        usage=Usage(*data["usage"]),
        saved_usd=float(data["cost_usd"]),
        prompt=str(data["prompt"]),
        grounded=data["grounded"],
    )
    return Answer(
        question,
        str(data["text"]),
        tuple(Citation(**c) for c in data["citations"]),
        found=bool(data["found"]),
        generator=str(data["generator"]),
        provenance=provenance,
    )
