"""Query side, first stages: embed the query twice (dense + BM25), search, fuse in-engine,
then optionally rerank.

Fusion (RRF) and MMR run inside Qdrant (prefetch + fusion query), so one round trip
serves the hybrid query on both the embedded engine and a server; nothing here depends
on which one it is. Each stage is timed, for the eval suite's per-stage latency.
"""

from __future__ import annotations

import time

from core.errors import InvalidRequestError
from core.ports import Embedder, Reranker, SparseEncoder, VectorStore
from core.settings import RetrievalSettings
from core.telemetry import Stage, stage
from core.text import option_terms
from core.types import Filters, Retrieval, Scope, ScoredChunk, SearchMode, SearchQuery

MAX_QUERY_CHARS = 2000


def normalize_query(text: str) -> str:
    """Collapse whitespace; refuse empty or oversized queries with a clear message."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidRequestError("the query is empty")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise InvalidRequestError(
            f"the query has {len(cleaned)} characters; the limit is {MAX_QUERY_CHARS}"
        )
    return cleaned


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` reading), as stage timings
    report them: to the microsecond."""
    return round((time.perf_counter() - start) * 1000, 3)


class Retriever:
    """Hybrid dense + sparse retrieval over the configured store, with optional rerank."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        settings: RetrievalSettings,
        reranker: Reranker | None = None,
        rerank_candidates: int = 30,
    ) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._store = store
        self._settings = settings
        self._reranker = reranker
        self._rerank_candidates = rerank_candidates
        store.ensure_collection(embedder.dim)

    def retrieve(
        self,
        text: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
        dense: list[float] | None = None,
        scope: Scope | None = None,
    ) -> Retrieval:
        """Top hits for `text` readable in `scope`; pass `dense` when the query vector was
        already computed. `scope` is None only for indexes without tenants (eval)."""
        query = normalize_query(text)
        chosen = mode or SearchMode(self._settings.mode)
        limit = top_k or self._settings.top_k
        fetch = max(limit, self._rerank_candidates) if self._reranker else limit
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if chosen is SearchMode.SPARSE:
            dense = None  # a keyword search has no use for the dense model
        elif dense is None:
            with stage(Stage.EMBED):
                dense = self._embedder.embed_query(query)
        with stage(Stage.SPARSE):
            sparse = self._sparse.encode_query(query)
            named = option_terms(query)  # "-J" also searches for exactly "-J"
            keywords = self._sparse.encode_query(named) if named else None
        timings["embed"] = elapsed_ms(start)
        s = self._settings
        start = time.perf_counter()
        with stage(Stage.SEARCH, **{"rag.mode": chosen.value, "rag.limit": fetch}):
            hits = self._store.search(
                SearchQuery(
                    dense=dense,
                    sparse=sparse,
                    limit=fetch,
                    mode=chosen,
                    prefetch_limit=max(s.prefetch_k, fetch),
                    fusion=s.fusion,
                    rrf_k=s.rrf_k,
                    weights=None
                    if s.dense_weight == s.sparse_weight
                    else (s.dense_weight, s.sparse_weight),
                    mmr_lambda=s.mmr_lambda,
                    filters=filters,
                    scope=scope,
                    keywords=keywords,
                )
            )
        timings["search"] = elapsed_ms(start)
        if self._reranker is not None and hits:
            start = time.perf_counter()
            with stage(Stage.RERANK, **{"rag.candidates": len(hits)}):
                hits = self._reranker.rerank(query, hits, limit)
            timings["rerank"] = elapsed_ms(start)
        return Retrieval(hits[:limit], timings)

    def embed_query(self, text: str) -> list[float]:
        """The dense query vector, for callers that reuse it (the answer cache)."""
        with stage(Stage.EMBED):
            return self._embedder.embed_query(normalize_query(text))

    def search(
        self,
        text: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
        scope: Scope | None = None,
    ) -> list[ScoredChunk]:
        return self.retrieve(text, top_k, filters, mode, scope=scope).hits
