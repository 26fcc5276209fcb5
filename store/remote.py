"""A Qdrant server or cluster through qdrant-client (the production adapter).

Tests run the same contract suite against `QdrantClient(":memory:")`, which speaks the
client API a server speaks. Server-side, prefer `RAG_STORE__URL` pointing at a
load-balanced cluster endpoint; the adapter itself holds no state beyond the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import StoreError
from core.types import Below, Filters, IndexedChunk, ScoredChunk, SearchQuery
from store.plan import Dbsf, Mmr, NearestDense, NearestSparse, Rrf, Scoring, Stage, plan_query
from store.schema import (
    DENSE,
    KEYWORD_FIELDS,
    SPARSE,
    FilterTerm,
    check_dense,
    filter_terms,
    from_payload,
    to_payload,
)

#: What qdrant-client raises: HTTP errors, transport errors, and (local mode, bad values)
#: ValueError/TypeError.
_CLIENT_ERRORS = (UnexpectedResponse, ResponseHandlingException, ValueError, TypeError)


def _client_filter(terms: Sequence[FilterTerm]) -> models.Filter | None:
    if not terms:
        return None
    conditions: list[Any] = [
        models.FieldCondition(key=key, range=models.Range(lt=value.limit))
        if isinstance(value, Below)
        else models.FieldCondition(
            key=key,
            match=models.MatchAny(any=value)
            if isinstance(value, list)
            else models.MatchValue(value=value),
        )
        for key, value in terms
    ]
    return models.Filter(must=conditions)


def _client_scoring(scoring: Scoring) -> tuple[Any, str | None]:
    """One stage's scoring in qdrant-client's types: the query, and the vector it uses."""
    match scoring:
        case NearestDense():
            return list(scoring.vector), DENSE
        case NearestSparse():
            indices, values = list(scoring.vector.indices), list(scoring.vector.values)
            return models.SparseVector(indices=indices, values=values), SPARSE
        case Rrf():
            weights = list(scoring.weights) if scoring.weights else None
            return models.RrfQuery(rrf=models.Rrf(k=scoring.k, weights=weights)), None
        case Dbsf():
            return models.FusionQuery(fusion=models.Fusion.DBSF), None
        case Mmr():  # the server API takes diversity = 1 - lambda
            mmr = models.Mmr(diversity=scoring.diversity, candidates_limit=scoring.candidates)
            return models.NearestQuery(nearest=list(scoring.vector), mmr=mmr), DENSE
        case _:
            assert_never(scoring)


def _client_prefetch(stage: Stage, flt: models.Filter | None) -> models.Prefetch:
    """A source stage as a prefetch; the filter applies where candidates are found."""
    query, using = _client_scoring(stage.scoring)
    return models.Prefetch(
        query=query,
        using=using,
        prefetch=[_client_prefetch(source, flt) for source in stage.sources] or None,
        filter=flt if stage.searches else None,
        limit=stage.limit,
    )


class QdrantServerStore:
    """`VectorStore` on a Qdrant collection reached through qdrant-client."""

    def __init__(self, client: QdrantClient, collection: str) -> None:
        self._client = client
        self._collection = collection

    def ensure_collection(self, dim: int) -> None:
        try:
            if self._client.collection_exists(self._collection):
                info = self._client.get_collection(self._collection)
                vectors = info.config.params.vectors
                params = vectors.get(DENSE) if isinstance(vectors, dict) else None
                if params is None:
                    check_dense(self._collection, 0, "missing", dim)
                    return
                check_dense(self._collection, params.size, params.distance.value, dim)
                return
            self._client.create_collection(
                self._collection,
                vectors_config={
                    DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            for name in KEYWORD_FIELDS:
                self._client.create_payload_index(
                    self._collection, name, models.PayloadSchemaType.KEYWORD
                )
        except _CLIENT_ERRORS as exc:
            raise StoreError(
                f"Qdrant server refused collection {self._collection!r}: {exc}"
            ) from exc

    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        structs = [
            models.PointStruct(
                id=p.chunk.id,
                vector={
                    DENSE: list(p.dense),
                    SPARSE: models.SparseVector(
                        indices=list(p.sparse.indices), values=list(p.sparse.values)
                    ),
                },
                payload=to_payload(p.chunk),
            )
            for p in points
        ]
        try:
            self._client.upsert(self._collection, points=structs, wait=True)
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"upsert into {self._collection!r} failed: {exc}") from exc

    def search(self, query: SearchQuery) -> list[ScoredChunk]:
        plan = plan_query(query)
        flt, root = _client_filter(plan.filter), plan.root
        scoring, using = _client_scoring(root.scoring)
        try:
            response = self._client.query_points(
                self._collection,
                prefetch=[_client_prefetch(source, flt) for source in root.sources] or None,
                query=scoring,
                using=using,
                query_filter=flt if root.searches else None,
                limit=root.limit,
                with_payload=True,
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"query on {self._collection!r} failed: {exc}") from exc
        return [ScoredChunk(from_payload(p.payload or {}), float(p.score)) for p in response.points]

    def delete_by_source(self, tenant: str, source: str, keep_ids: Sequence[str] = ()) -> None:
        flt = models.Filter(
            must=[
                models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant)),
                models.FieldCondition(key="source", match=models.MatchValue(value=source)),
            ],
            must_not=[models.HasIdCondition(has_id=list(keep_ids))] if keep_ids else None,
        )
        self._delete(flt)

    def delete(self, filters: Filters) -> None:
        flt = _client_filter(filter_terms(filters))
        if flt is None:
            raise StoreError("refusing to delete without a filter")
        self._delete(flt)

    def _delete(self, flt: models.Filter) -> None:
        try:
            self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=flt), wait=True
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"delete in {self._collection!r} failed: {exc}") from exc

    def count(self, filters: Filters | None = None) -> int:
        try:
            result = self._client.count(
                self._collection, count_filter=_client_filter(filter_terms(filters)), exact=True
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"count in {self._collection!r} failed: {exc}") from exc
        return int(result.count)

    def close(self) -> None:
        self._client.close()
