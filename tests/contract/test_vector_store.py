"""One contract for every `VectorStore` adapter: the embedded engine and qdrant-client.

qdrant-client runs against `QdrantClient(":memory:")`, which speaks the API a Qdrant
server speaks; a fork that adds an adapter adds one fixture param here.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from core.errors import InvalidRequestError, SchemaMismatchError
from core.ports import VectorStore
from core.settings import SparseSettings
from core.types import Chunk, Fusion, IndexedChunk, SearchMode, SearchQuery, SparseVector
from ingest.chunk import chunk_id, content_hash
from ingest.embed import Bm25Encoder
from store.edge import EdgeStore
from store.remote import QdrantServerStore
from store.tuning import IndexTuning
from tests.fakes import HashEmbedder

DIM = 32
TEXTS = {
    "apples.md": ["Red apples are sweet and crunchy.", "Apple trees blossom in spring."],
    "pears.md": ["Green pears ripen after picking."],
    "sea.md": ["The blue sea is calm at dawn.", "Sailors read the sea and the sky."],
}

StoreFactory = Callable[[], VectorStore]


@pytest.fixture(params=["qdrant-edge", "qdrant-client"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[VectorStore] = []
    client = QdrantClient(":memory:")

    def factory() -> VectorStore:
        store: VectorStore
        if request.param == "qdrant-edge":
            store = EdgeStore(tmp_path / "edge", "contract")
        else:
            # Local mode searches exactly and warns about search params: none are sent.
            store = QdrantServerStore(client, "contract", IndexTuning(hnsw_ef=None))
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def _points(texts: dict[str, list[str]] = TEXTS) -> list[IndexedChunk]:
    embedder, bm25 = HashEmbedder(DIM), Bm25Encoder(SparseSettings())
    points = []
    for source, paragraphs in texts.items():
        for index, text in enumerate(paragraphs):
            digest = content_hash(text)
            chunk = Chunk(
                id=chunk_id(source, digest),
                source=source,
                text=text,
                title=source,
                section="Intro",
                page=index + 1,
                index=index,
                content_hash=digest,
                metadata={"lang": "en"},
            )
            points.append(
                IndexedChunk(
                    chunk, embedder.embed_documents([text])[0], bm25.encode_documents([text])[0]
                )
            )
    return points


def _query(text: str, mode: SearchMode = SearchMode.HYBRID, **kw: Any) -> SearchQuery:
    return SearchQuery(
        dense=HashEmbedder(DIM).embed_query(text),
        sparse=Bm25Encoder(SparseSettings()).encode_query(text),
        limit=int(kw.pop("limit", 5)),
        mode=mode,
        **kw,
    )


@pytest.fixture
def store(make_store: StoreFactory) -> VectorStore:
    store = make_store()
    store.ensure_collection(DIM)
    store.upsert(_points())
    return store


def test_count_and_idempotent_upsert(store: VectorStore) -> None:
    assert store.count() == 5
    store.upsert(_points())
    assert store.count() == 5


def test_payload_round_trips_into_the_same_chunk(store: VectorStore) -> None:
    hits = store.search(_query("red apples sweet crunchy"))
    original = next(p.chunk for p in _points() if p.chunk.text.startswith("Red apples"))
    assert hits[0].chunk == original


@pytest.mark.parametrize("mode", list(SearchMode))
def test_every_mode_ranks_the_matching_chunk_first(store: VectorStore, mode: SearchMode) -> None:
    hits = store.search(_query("green pears ripen after picking", mode))
    assert hits[0].chunk.source == "pears.md"


def test_hybrid_scores_are_reciprocal_rank_fusion(store: VectorStore) -> None:
    hits = store.search(_query("green pears ripen after picking", rrf_k=60))
    # First in both rankings: 1/(k + rank) from each prefetch, Qdrant counts ranks from 0.
    assert hits[0].score == pytest.approx(2 / 60, rel=1e-3)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_limit_is_respected(store: VectorStore) -> None:
    assert len(store.search(_query("sea apples pears", limit=2))) == 2


def test_filters_match_one_value_or_any_of_several(store: VectorStore) -> None:
    only_sea = store.search(_query("apples", filters={"source": "sea.md"}))
    assert {h.chunk.source for h in only_sea} == {"sea.md"}
    some = store.search(_query("apples", filters={"source": ["sea.md", "pears.md"]}))
    assert {h.chunk.source for h in some} == {"sea.md", "pears.md"}
    assert store.count({"source": "apples.md"}) == 2


def test_delete_by_source_keeps_the_listed_ids(store: VectorStore) -> None:
    keep = [p.chunk.id for p in _points() if p.chunk.source == "apples.md"][:1]
    store.delete_by_source("default", "apples.md", keep_ids=keep)
    assert store.count({"source": "apples.md"}) == 1
    store.delete_by_source("default", "sea.md")
    assert store.count() == 2


def test_delete_by_filter_matches_any_item_of_a_list_field(store: VectorStore) -> None:
    tagged = [
        IndexedChunk(
            Chunk(
                id=chunk_id("cache", str(i)),
                source="cache",
                text=f"entry {i}",
                title="",
                section="",
                page=None,
                index=i,
                content_hash=str(i),
                metadata={"cited_sources": sources},
            ),
            HashEmbedder(DIM).embed_query(f"entry {i}"),
            SparseVector((), ()),
        )
        for i, sources in enumerate([["a.md", "b.md"], ["b.md"], ["c.md"]])
    ]
    store.upsert(tagged)
    store.delete({"meta.cited_sources": ["b.md"]})
    assert store.count({"source": "cache"}) == 1
    assert store.count({"meta.cited_sources": "c.md"}) == 1
    assert store.count() == 6  # 5 chunks of the other sources' points are untouched


def test_a_collection_refuses_another_embedders_vectors(
    store: VectorStore, make_store: StoreFactory
) -> None:
    with pytest.raises(SchemaMismatchError, match="RAG_EMBEDDING__MODEL"):
        make_store().ensure_collection(DIM * 2)


def test_same_dimension_reopens_the_existing_collection(
    store: VectorStore, make_store: StoreFactory
) -> None:
    if isinstance(store, EdgeStore):
        store.close()  # one process holds an edge shard at a time
    reopened = make_store()
    reopened.ensure_collection(DIM)
    assert reopened.count() == 5


@pytest.mark.parametrize("mode", [SearchMode.DENSE, SearchMode.HYBRID])
def test_mmr_keeps_the_best_match_first_and_returns_distinct_chunks(
    store: VectorStore, mode: SearchMode
) -> None:
    hits = store.search(_query("green pears ripen after picking", mode, mmr_lambda=0.5))
    assert hits[0].chunk.source == "pears.md"
    assert len({h.chunk.id for h in hits}) == len(hits) == 5


@pytest.mark.parametrize("weights", [(1.0, 1.0), (3.0, 0.5), (0.2, 4.0)])
def test_weighted_rrf_stretches_ranks_as_qdrant_defines_it(
    store: VectorStore, weights: tuple[float, float]
) -> None:
    # Qdrant: score = sum over lists of 1 / ((position + 1) / weight + k - 1). A weight
    # stretches a list's rank decay; the top of every list still scores 1/k.
    text, k = "apples pears sea", 60
    rankings = [
        [h.chunk.id for h in store.search(_query(text, mode, limit=50))]
        for mode in (SearchMode.DENSE, SearchMode.SPARSE)
    ]
    expected: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for position, point_id in enumerate(ranking):
            expected[point_id] = expected.get(point_id, 0.0) + 1 / ((position + 1) / weight + k - 1)
    hits = store.search(_query(text, weights=weights, rrf_k=k))
    assert {h.chunk.id: round(h.score, 5) for h in hits} == {
        point_id: round(score, 5)
        for point_id, score in sorted(expected.items(), key=lambda item: -item[1])[: len(hits)]
    }


def _unit(degrees_from_query: float, axis: int) -> list[float]:
    """A unit vector `degrees_from_query` away from the query (axis 0), towards `axis`."""
    vector = [0.0] * DIM
    vector[0] = math.cos(math.radians(degrees_from_query))
    vector[axis] = math.sin(math.radians(degrees_from_query))
    return vector


#: Three near-duplicates of the query (2 degrees apart) and one relevant but different
#: point (30 degrees away, in another direction): dense ranking puts the duplicates first.
NEAR_DUPLICATES = {"dup-0": _unit(0, 1), "dup-2": _unit(2, 1), "dup-4": _unit(4, 1)}
DIVERSE = {"other-30": _unit(30, 2)}


def _placed(vectors: dict[str, list[float]]) -> list[IndexedChunk]:
    """Points with hand-placed dense vectors, all matching the same sparse term."""
    return [
        IndexedChunk(
            Chunk(chunk_id(name, name), name, name, "", "", None, 0, name),
            vector,
            SparseVector((7,), (1.0,)),
        )
        for name, vector in vectors.items()
    ]


@pytest.mark.parametrize("mode", [SearchMode.DENSE, SearchMode.HYBRID])
def test_mmr_lambda_weighs_relevance_so_low_values_diversify(
    make_store: StoreFactory, mode: SearchMode
) -> None:
    # mmr_lambda is the weight of relevance (Qdrant's diversity = 1 - lambda). An adapter
    # that passed it the other way round would diversify at 1.0 and not at 0.2.
    store = make_store()
    store.ensure_collection(DIM)
    store.upsert(_placed({**NEAR_DUPLICATES, **DIVERSE}))

    def ranking(mmr_lambda: float | None, in_mode: SearchMode = mode) -> list[str]:
        query = SearchQuery(
            _unit(0, 1), SparseVector((7,), (1.0,)), 4, in_mode, mmr_lambda=mmr_lambda
        )
        return [h.chunk.source for h in store.search(query)]

    assert ranking(None, SearchMode.DENSE) == ["dup-0", "dup-2", "dup-4", "other-30"]
    assert ranking(1.0) == ranking(None, SearchMode.DENSE)
    assert ranking(0.2)[:2] == ["dup-0", "other-30"]


def test_a_sparse_search_needs_no_dense_vector(store: VectorStore) -> None:
    text = "green pears ripen after picking"
    without = SearchQuery(None, _query(text).sparse, 5, SearchMode.SPARSE, mmr_lambda=0.5)
    with_dense = _query(text, SearchMode.SPARSE)
    assert [(h.chunk, h.score) for h in store.search(without)] == [
        (h.chunk, h.score) for h in store.search(with_dense)
    ]


@pytest.mark.parametrize("mode", [SearchMode.DENSE, SearchMode.HYBRID])
def test_modes_that_use_the_dense_vector_refuse_a_query_without_one(
    store: VectorStore, mode: SearchMode
) -> None:
    query = SearchQuery(None, _query("pears").sparse, 5, mode)
    with pytest.raises(InvalidRequestError, match="dense query vector"):
        store.search(query)


def test_dbsf_sums_scores_normalised_by_each_lists_spread(store: VectorStore) -> None:
    # Qdrant: each list's scores map to (score - low) / (high - low) with low/high = mean
    # -/+ 3 sample standard deviations (n - 1) of that list; a point's fused score is the sum.
    text = "apples pears sea"
    expected: dict[str, float] = {}
    for mode in (SearchMode.DENSE, SearchMode.SPARSE):
        hits = store.search(_query(text, mode, limit=50))
        scores = [h.score for h in hits]
        mean = sum(scores) / len(scores)
        spread = 3 * math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
        for hit in hits:
            normalised = (hit.score - (mean - spread)) / (2 * spread) if spread else 0.5
            expected[hit.chunk.id] = expected.get(hit.chunk.id, 0.0) + normalised
    hits = store.search(_query(text, fusion=Fusion.DBSF))
    assert {h.chunk.id: round(h.score, 4) for h in hits} == {
        point_id: round(score, 4)
        for point_id, score in sorted(expected.items(), key=lambda item: -item[1])[: len(hits)]
    }


def test_a_keyword_prefetch_lifts_the_chunk_that_names_the_keyword(store: VectorStore) -> None:
    # Dense and BM25 both lean to the sea; the keyword list names only the pears.
    keywords = Bm25Encoder(SparseSettings()).encode_query("pears")
    plain = _query("the calm blue sea at dawn", fusion=Fusion.DBSF)
    assert plain.keywords is None
    hits = store.search(dataclasses.replace(plain, keywords=keywords))
    assert "pears.md" in [h.chunk.source for h in hits[:3]]
    assert store.search(plain)[0].chunk.source == "sea.md"
