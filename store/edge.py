"""The embedded default: Qdrant Edge, a real Qdrant engine inside this process.

One shard folder per collection under `store.path`; a small `schema.json` beside the
segments records the dense vector size so a later start with another embedder fails
fast instead of mixing vector spaces, and the index settings it was built with, so a start
with other ones reports them (`store.tuning`). See docs/adr/0001-embedded-vector-store.md.

Edge builds HNSW (and quantized vectors) only when its optimizer runs: `optimize()`, also
called by `close()`. Until then new points are searched exactly (docs/adr/0025).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, assert_never

import qdrant_edge as qe

from core.diskspace import require_free
from core.errors import StorageFullError, StoreBusyError, StoreError
from core.types import Below, Filters, IndexedChunk, ScoredChunk, SearchQuery
from store.plan import (
    Dbsf,
    Mmr,
    NearestDense,
    NearestSparse,
    QueryPlan,
    Rrf,
    Scoring,
    Stage,
    plan_query,
)
from store.schema import (
    DENSE,
    DISTANCE,
    KEYWORD_FIELDS,
    SPARSE,
    FilterTerm,
    check_dense,
    filter_terms,
    from_payload,
    to_payload,
)
from store.tuning import ENGINE_DEFAULTS, IndexTuning, differences, report_drift

log = logging.getLogger(__name__)

_SCHEMA_FILE = "schema.json"


def _edge_filter(terms: Sequence[FilterTerm]) -> qe.Filter | None:
    if not terms:
        return None
    return qe.Filter(must=[_edge_condition(key, value) for key, value in terms])


def _edge_condition(key: str, value: str | int | bool | Below | list[str]) -> qe.FieldCondition:
    if isinstance(value, Below):
        return qe.FieldCondition(key=key, range=qe.RangeFloat(lt=value.limit))
    return qe.FieldCondition(
        key=key, match=qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value)
    )


def _engine_error(action: str, path: Path, exc: Exception) -> StoreError:
    """Qdrant Edge raises plain `Exception`s; a held WAL lock means another process."""
    if "WouldBlock" in str(exc):
        return StoreBusyError(
            f"the embedded store at {path} is in use by another process (is `rag serve` or "
            "another `rag` command running?). Stop it and retry, or run Qdrant as a server "
            "(RAG_STORE__BACKEND=qdrant) so several processes can share it"
        )
    return StoreError(f"Qdrant Edge {action} failed at {path}: {exc}")


def _edge_scoring(scoring: Scoring) -> Any:
    """One stage's scoring in Edge's types (`Any`: the stub leaves `qe.Fusion.Rrf` out of
    its `ScoringQueryType`)."""
    match scoring:
        case NearestDense():
            return qe.Query.Nearest(list(scoring.vector), using=DENSE)
        case NearestSparse():
            sparse = qe.SparseVector(list(scoring.vector.indices), list(scoring.vector.values))
            return qe.Query.Nearest(sparse, using=SPARSE)
        case Rrf():
            return qe.Fusion.Rrf(
                k=scoring.k, weights=list(scoring.weights) if scoring.weights else None
            )
        case Dbsf():
            return qe.Fusion.Dbsf()
        case Mmr():  # Edge takes lambda itself: 1.0 = relevance only
            return qe.Mmr(list(scoring.vector), scoring.relevance, scoring.candidates, using=DENSE)
        case _:
            assert_never(scoring)


def _edge_prefetch(
    stage: Stage, flt: qe.Filter | None, params: qe.SearchParams | None
) -> qe.Prefetch:
    """A source stage as a prefetch; the filter and search params apply where candidates
    are found."""
    return qe.Prefetch(
        limit=stage.limit,
        query=_edge_scoring(stage.scoring),
        prefetches=[_edge_prefetch(source, flt, params) for source in stage.sources] or None,
        params=params if stage.searches else None,
        filter=flt if stage.searches else None,
    )


def _edge_request(plan: QueryPlan, params: qe.SearchParams | None = None) -> qe.QueryRequest:
    """The shared query plan in Qdrant Edge's types: the root stage is the request."""
    flt, root = _edge_filter(plan.filter), plan.root
    return qe.QueryRequest(
        limit=root.limit,
        query=_edge_scoring(root.scoring),
        prefetches=[_edge_prefetch(source, flt, params) for source in root.sources] or None,
        params=params if root.searches else None,
        filter=flt if root.searches else None,
        with_payload=True,
    )


def _edge_quantization(
    tuning: IndexTuning,
) -> qe.ScalarQuantizationConfig | qe.BinaryQuantizationConfig | None:
    if tuning.quantization == "int8":
        return qe.ScalarQuantizationConfig(
            qe.ScalarType.Int8, quantile=0.99, always_ram=tuning.quantization_always_ram
        )
    if tuning.quantization == "binary":
        return qe.BinaryQuantizationConfig(always_ram=tuning.quantization_always_ram)
    return None


def edge_search_params(tuning: IndexTuning) -> qe.SearchParams | None:
    """Query-time HNSW ef, and rescoring of quantized candidates by the full vectors."""
    quantization = (
        None
        if tuning.quantization == "none"
        else qe.QuantizationSearchParams(rescore=tuning.rescore, oversampling=tuning.oversampling)
    )
    if tuning.hnsw_ef is None and quantization is None:
        return None
    return qe.SearchParams(hnsw_ef=tuning.hnsw_ef, quantization=quantization)


def _keyword_index(field: str, tuning: IndexTuning) -> qe.KeywordIndexParams:
    """`tenant` is Qdrant's tenant index (points stored by tenant) unless turned off."""
    return qe.KeywordIndexParams(
        is_tenant=True if field == "tenant" and tuning.tenant_index else None
    )


def _is_tenant(params: object) -> bool:
    return bool(getattr(params, "is_tenant", None))


class EdgeStore:
    """`VectorStore` on an in-process Qdrant Edge shard, persisted under a folder.

    Writes first check that the volume keeps `min_free_mb` free (`core.diskspace`): the
    engine writes through memory maps, and a full volume would kill the process (SIGBUS).
    """

    def __init__(
        self,
        root: Path,
        collection: str,
        min_free_mb: float = 0.0,
        tuning: IndexTuning | None = None,
    ) -> None:
        self._path = Path(root) / collection
        self._collection = collection
        self._min_free_mb = min_free_mb
        self._tuning = tuning or IndexTuning()
        self._params = edge_search_params(self._tuning)
        self._shard: qe.EdgeShard | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _config(self, dim: int, tuning: IndexTuning) -> qe.EdgeConfig:
        dense = qe.EdgeVectorParams(
            size=dim, distance=qe.Distance.Cosine, on_disk=tuning.on_disk_vectors
        )
        return qe.EdgeConfig(
            vectors={DENSE: dense},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            on_disk_payload=tuning.on_disk_payload,
            hnsw_config=qe.HnswIndexConfig(
                tuning.hnsw_m, tuning.hnsw_ef_construct, tuning.full_scan_threshold_kb
            ),
            quantization_config=_edge_quantization(tuning),
        )

    def ensure_collection(self, dim: int) -> None:
        if self._shard is not None:
            return
        schema_path = self._path / _SCHEMA_FILE
        try:
            if schema_path.exists():
                schema = json.loads(schema_path.read_text())
                check_dense(self._collection, int(schema["size"]), schema["distance"], dim)
                found = schema.get("index") or ENGINE_DEFAULTS  # built before it was recorded
                report_drift(
                    self._collection,
                    differences(self._tuning.recorded(), found),
                    self._tuning.on_drift,
                )
                # Opened as built: a changed config would make the optimizer re-tune it.
                as_built = self._config(dim, self._tuning.as_built(found))
                self._shard = qe.EdgeShard.load(str(self._path), as_built)
            else:
                # A folder without schema.json is a create that died half-way: start over.
                if self._path.exists():
                    shutil.rmtree(self._path)
                require_free([self._path], self._min_free_mb)
                self._path.mkdir(parents=True)
                self._shard = qe.EdgeShard.create(str(self._path), self._config(dim, self._tuning))
                schema = {"size": dim, "distance": DISTANCE, "index": self._tuning.recorded()}
                schema_path.write_text(json.dumps(schema))
            self._ensure_payload_indexes(self._shard)
        except (StoreError, StorageFullError):
            raise
        except Exception as exc:  # the engine's only exception type
            raise _engine_error("open", self._path, exc) from exc

    def _ensure_payload_indexes(self, shard: qe.EdgeShard) -> None:
        """Create the missing keyword indexes, and upgrade `tenant` to (or from) a tenant
        index; indexes already as configured are left alone (a rebuild costs seconds at
        100k points)."""
        existing = shard.info().payload_schema
        for name in KEYWORD_FIELDS:
            wanted = _keyword_index(name, self._tuning)
            info = existing.get(name)
            if info is not None and _is_tenant(info.params) == bool(wanted.is_tenant):
                continue
            shard.update(qe.UpdateOperation.create_field_index(name, wanted))

    def optimize(self) -> bool:
        """Build HNSW graphs and quantized vectors for the points written since the last
        run (Edge has no background optimizer); True when anything was rebuilt."""
        return bool(self._run("optimize", lambda: self.shard.optimize()))

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise StoreError("call ensure_collection() before using the store")
        return self._shard

    def upsert(self, points: Sequence[IndexedChunk]) -> None:
        if not points:
            return
        edge_points = [
            qe.Point(
                id=p.chunk.id,
                vector={
                    DENSE: list(p.dense),
                    SPARSE: qe.SparseVector(list(p.sparse.indices), list(p.sparse.values)),
                },
                payload=to_payload(p.chunk),
            )
            for p in points
        ]
        self._run(
            "upsert", lambda: self.shard.update(qe.UpdateOperation.upsert_points(edge_points))
        )

    def _run(self, action: str, call: Any) -> Any:
        """Engine calls with its errors translated (bad values, I/O, a lost lock); writes
        only while the volume has room."""
        _ = self.shard  # not opened: say so, before the engine does
        if action in ("upsert", "delete", "optimize"):
            require_free([self._path], self._min_free_mb)
        try:
            return call()
        except Exception as exc:  # the engine's only exception type
            raise _engine_error(action, self._path, exc) from exc

    def search(self, query: SearchQuery) -> list[ScoredChunk]:
        request = _edge_request(plan_query(query), self._params)
        points = self._run("query", lambda: self.shard.query(request))
        return [ScoredChunk(from_payload(p.payload or {}), float(p.score)) for p in points]

    def delete_by_source(self, tenant: str, source: str, keep_ids: Sequence[str] = ()) -> None:
        flt = qe.Filter(
            must=[
                qe.FieldCondition(key="tenant", match=qe.MatchValue(tenant)),
                qe.FieldCondition(key="source", match=qe.MatchValue(source)),
            ],
            must_not=[qe.HasIdCondition(set(keep_ids))] if keep_ids else None,
        )
        self._run(
            "delete", lambda: self.shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
        )

    def delete(self, filters: Filters) -> None:
        flt = _edge_filter(filter_terms(filters))
        if flt is None:
            raise StoreError("refusing to delete without a filter")
        self._run(
            "delete", lambda: self.shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
        )

    def count(self, filters: Filters | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_edge_filter(filter_terms(filters)))
        return int(self._run("count", lambda: self.shard.count(request)))

    def flush(self) -> None:
        self.shard.flush()

    def close(self) -> None:
        """Index what was written (so the next open searches by HNSW), flush, release."""
        if self._shard is not None:
            try:
                self.optimize()
            except (StoreError, StorageFullError) as exc:  # still flush and release
                log.warning("%s: left unindexed at close: %s", self._collection, exc)
            self._shard.flush()
            self._shard.close()
            self._shard = None
