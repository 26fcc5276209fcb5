"""Query side, first stages: embed the query twice (dense + BM25), search, fuse in-engine.

Fusion runs inside Qdrant (prefetch + RRF), so one round trip serves the hybrid query
on both the embedded engine and a server; nothing here depends on which one it is.
"""

from __future__ import annotations

from core.errors import InvalidRequestError
from core.ports import Embedder, SparseEncoder, VectorStore
from core.settings import RetrievalSettings
from core.types import Filters, ScoredChunk, SearchMode, SearchQuery

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


class Retriever:
    """Hybrid dense + sparse retrieval over the configured store."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        settings: RetrievalSettings,
    ) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._store = store
        self._settings = settings
        store.ensure_collection(embedder.dim)

    def search(
        self,
        text: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[ScoredChunk]:
        query = normalize_query(text)
        chosen = mode or SearchMode(self._settings.mode)
        dense = self._embedder.embed_query(query) if chosen is not SearchMode.SPARSE else []
        if not dense:
            dense = [0.0] * self._embedder.dim
        limit = top_k or self._settings.top_k
        return self._store.search(
            SearchQuery(
                dense=dense,
                sparse=self._sparse.encode_query(query),
                limit=limit,
                mode=chosen,
                prefetch_limit=max(self._settings.prefetch_k, limit),
                rrf_k=self._settings.rrf_k,
                filters=filters,
            )
        )
