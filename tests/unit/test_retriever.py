from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from core.errors import InvalidRequestError, ModelUnavailableError
from core.settings import EmbeddingSettings, RetrievalSettings, SparseSettings
from core.types import Chunk, IndexedChunk, ScoredChunk, SearchMode, SparseVector
from ingest.embed import Bm25Encoder, FastEmbedder
from retrieval.search import Retriever, normalize_query
from tests.fakes import HashEmbedder, MemoryStore


def _retriever(**settings: Any) -> tuple[Retriever, MemoryStore]:
    store = MemoryStore()
    retriever = Retriever(
        HashEmbedder(8), Bm25Encoder(SparseSettings()), store, RetrievalSettings(**settings)
    )
    return retriever, store


def test_hybrid_query_carries_both_vectors_and_the_fusion_settings() -> None:
    retriever, store = _retriever(top_k=4, prefetch_k=30, rrf_k=20)
    retriever.search("  Qdrant   edge  ", filters={"source": "a.md"})
    query = store.queries[0]
    assert (query.mode, query.limit, query.prefetch_limit, query.rrf_k) == (
        SearchMode.HYBRID,
        4,
        30,
        20,
    )
    assert query.dense is not None
    assert len(query.dense) == 8
    assert any(query.dense)
    assert query.sparse.indices
    assert query.filters == {"source": "a.md"}
    assert store.dim == 8
    assert (store.writes, store.deletes) == ([], [])  # retrieval never writes


def test_prefetch_never_smaller_than_the_requested_results() -> None:
    retriever, store = _retriever(prefetch_k=10)
    retriever.search("query", top_k=40)
    assert store.queries[0].prefetch_limit == 40


def test_sparse_mode_skips_the_dense_model() -> None:
    retriever, store = _retriever()
    retriever.search("query words", mode=SearchMode.SPARSE)
    assert store.queries[0].dense is None
    assert store.queries[0].sparse.indices


@pytest.mark.parametrize(("text", "reason"), [("   ", "empty"), ("x" * 2001, "limit")])
def test_bad_queries_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason):
        normalize_query(text)


def test_a_catalog_model_needs_explicit_download_permission(tmp_path: object) -> None:
    with pytest.raises(ModelUnavailableError, match="RAG_EMBEDDING__ALLOW_DOWNLOAD=true"):
        FastEmbedder(EmbeddingSettings(model="BAAI/bge-small-en-v1.5"))


def test_a_missing_local_model_says_to_run_setup(tmp_path: object) -> None:
    with pytest.raises(ModelUnavailableError, match="make setup"):
        FastEmbedder(EmbeddingSettings(models_dir=tmp_path))  # type: ignore[arg-type]


class ReversingReranker:
    """Puts the last candidate first: makes the rerank stage's effect visible."""

    name = "reverse"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def rerank(self, query: str, hits: Sequence[ScoredChunk], top_k: int) -> list[ScoredChunk]:
        self.seen.append(len(hits))
        return list(reversed(hits))[:top_k]


def test_the_reranker_sees_the_candidate_pool_and_orders_the_results() -> None:
    store, reranker = MemoryStore(), ReversingReranker()
    query_vector = HashEmbedder(8).embed_query("query")
    store.upsert(  # chunk i scores 1 / (i + 1) against the query: "0" first
        [
            IndexedChunk(
                Chunk(str(i), "s", f"t{i}", "", "", None, i, "h"),
                [x / (i + 1) for x in query_vector],
                SparseVector((), ()),
            )
            for i in range(30)
        ]
    )
    retriever = Retriever(
        HashEmbedder(8),
        Bm25Encoder(SparseSettings()),
        store,
        RetrievalSettings(),
        reranker,
        rerank_candidates=20,
    )
    result = retriever.retrieve("query", top_k=3)
    assert store.queries[0].limit == 20
    assert reranker.seen == [20]
    assert [h.chunk.id for h in result.hits] == ["19", "18", "17"]
    assert set(result.timings_ms) == {"embed", "search", "rerank"}
