"""A Qdrant server or cluster through qdrant-client (the production adapter).

Tests run the same contract suite against `QdrantClient(":memory:")`, which speaks the
client API a server speaks, and check the requests a real server would get at the HTTP
boundary (tests/unit/test_store_tuning.py). Server-side, prefer `RAG_STORE__URL` pointing
at a load-balanced cluster endpoint; the adapter itself holds no state beyond the client.

A new collection is created with the cluster topology (`ClusterTopology`) and the index
tuning (`store.tuning.IndexTuning`); an existing one is compared with both and its
differences reported (`store.tuning.report_drift`). Payload indexes are created at every
start when missing (the tenant field as Qdrant's tenant index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from core.errors import StoreError
from core.settings import StoreSettings
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
from store.tuning import IndexTuning, Setting, differences, report_drift

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


def _client_prefetch(
    stage: Stage, flt: models.Filter | None, params: models.SearchParams | None
) -> models.Prefetch:
    """A source stage as a prefetch; the filter and search params apply where candidates
    are found."""
    query, using = _client_scoring(stage.scoring)
    return models.Prefetch(
        query=query,
        using=using,
        prefetch=[_client_prefetch(source, flt, params) for source in stage.sources] or None,
        filter=flt if stage.searches else None,
        params=params if stage.searches else None,
        limit=stage.limit,
    )


@dataclass(frozen=True, slots=True)
class ClusterTopology:
    """How a collection spreads over a cluster; None leaves the server's default (1, 1, 1)."""

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ClusterTopology:
        return cls(
            settings.shard_number, settings.replication_factor, settings.write_consistency_factor
        )

    def recorded(self) -> dict[str, Setting]:
        """The values configured (the others are the server's to choose)."""
        values: dict[str, Setting] = {
            "shard_number": self.shard_number,
            "replication_factor": self.replication_factor,
            "write_consistency_factor": self.write_consistency_factor,
        }
        return {k: v for k, v in values.items() if v is not None}


def _client_quantization(tuning: IndexTuning) -> models.QuantizationConfig | None:
    if tuning.quantization == "int8":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(
                type=models.ScalarType.INT8,
                quantile=0.99,
                always_ram=tuning.quantization_always_ram,
            )
        )
    if tuning.quantization == "binary":
        return models.BinaryQuantization(
            binary=models.BinaryQuantizationConfig(always_ram=tuning.quantization_always_ram)
        )
    return None


def client_search_params(tuning: IndexTuning) -> models.SearchParams | None:
    """Query-time HNSW ef, and rescoring of quantized candidates by the full vectors."""
    quantization = (
        None
        if tuning.quantization == "none"
        else models.QuantizationSearchParams(
            rescore=tuning.rescore, oversampling=tuning.oversampling
        )
    )
    if tuning.hnsw_ef is None and quantization is None:
        return None
    return models.SearchParams(hnsw_ef=tuning.hnsw_ef, quantization=quantization)


def _quantization_name(config: object) -> str:
    if isinstance(config, models.ScalarQuantization):
        return "int8"
    if isinstance(config, models.BinaryQuantization):
        return "binary"
    if isinstance(config, models.ProductQuantization):
        return "product"
    return "none"


def _found_settings(info: models.CollectionInfo, dense: models.VectorParams) -> dict[str, Setting]:
    """What an existing collection was built with, in `IndexTuning.recorded()`'s terms."""
    config = info.config
    found: dict[str, Setting] = {
        "hnsw_m": config.hnsw_config.m,
        "hnsw_ef_construct": config.hnsw_config.ef_construct,
        "quantization": _quantization_name(dense.quantization_config or config.quantization_config),
        "on_disk_vectors": bool(dense.on_disk),
        "shard_number": config.params.shard_number,
        "replication_factor": config.params.replication_factor,
        "write_consistency_factor": config.params.write_consistency_factor,
    }
    return {k: v for k, v in found.items() if v is not None}


class QdrantServerStore:
    """`VectorStore` on a Qdrant collection reached through qdrant-client."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        tuning: IndexTuning | None = None,
        topology: ClusterTopology | None = None,
    ) -> None:
        self._client = client
        self._collection = collection
        self._tuning = tuning or IndexTuning()
        self._topology = topology or ClusterTopology()
        self._params = client_search_params(self._tuning)

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
                configured = {**self._tuning.recorded(), **self._topology.recorded()}
                found = _found_settings(info, params)
                report_drift(
                    self._collection, differences(configured, found), self._tuning.on_drift
                )
                self._ensure_payload_indexes(info.payload_schema)
                return
            self._create(dim)
            self._ensure_payload_indexes({})
        except _CLIENT_ERRORS as exc:
            raise StoreError(
                f"Qdrant server refused collection {self._collection!r}: {exc}"
            ) from exc

    def _create(self, dim: int) -> None:
        tuning, topology = self._tuning, self._topology
        self._client.create_collection(
            self._collection,
            vectors_config={
                DENSE: models.VectorParams(
                    size=dim, distance=models.Distance.COSINE, on_disk=tuning.on_disk_vectors
                )
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            shard_number=topology.shard_number,
            replication_factor=topology.replication_factor,
            write_consistency_factor=topology.write_consistency_factor,
            on_disk_payload=tuning.on_disk_payload,
            hnsw_config=models.HnswConfigDiff(
                m=tuning.hnsw_m,
                ef_construct=tuning.hnsw_ef_construct,
                full_scan_threshold=tuning.full_scan_threshold_kb,
            ),
            quantization_config=_client_quantization(tuning),
        )

    def _ensure_payload_indexes(self, existing: dict[str, models.PayloadIndexInfo]) -> None:
        """Create the missing keyword indexes; `tenant` as Qdrant's tenant index (its
        points stored together, so one tenant's search reads only its own)."""
        for name in KEYWORD_FIELDS:
            tenant = name == "tenant" and self._tuning.tenant_index
            info = existing.get(name)
            if info is not None and bool(getattr(info.params, "is_tenant", None)) == tenant:
                continue
            schema: models.PayloadSchemaType | models.KeywordIndexParams = (
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                if tenant
                else models.PayloadSchemaType.KEYWORD
            )
            self._client.create_payload_index(self._collection, name, schema, wait=True)

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
                prefetch=[_client_prefetch(source, flt, self._params) for source in root.sources]
                or None,
                query=scoring,
                using=using,
                query_filter=flt if root.searches else None,
                search_params=self._params if root.searches else None,
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
