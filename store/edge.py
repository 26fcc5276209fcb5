"""The embedded default: Qdrant Edge, a real Qdrant engine inside this process.

One shard folder per collection under `store.path`; a small `schema.json` beside the
segments records the dense vector size so a later start with another embedder fails
fast instead of mixing vector spaces. See docs/adr/0001-embedded-vector-store.md.
"""

from __future__ import annotations

import json
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


def _edge_prefetch(stage: Stage, flt: qe.Filter | None) -> qe.Prefetch:
    """A source stage as a prefetch; the filter applies where candidates are found."""
    return qe.Prefetch(
        limit=stage.limit,
        query=_edge_scoring(stage.scoring),
        prefetches=[_edge_prefetch(source, flt) for source in stage.sources] or None,
        filter=flt if stage.searches else None,
    )


def _edge_request(plan: QueryPlan) -> qe.QueryRequest:
    """The shared query plan in Qdrant Edge's types: the root stage is the request."""
    flt, root = _edge_filter(plan.filter), plan.root
    return qe.QueryRequest(
        limit=root.limit,
        query=_edge_scoring(root.scoring),
        prefetches=[_edge_prefetch(source, flt) for source in root.sources] or None,
        filter=flt if root.searches else None,
        with_payload=True,
    )


class EdgeStore:
    """`VectorStore` on an in-process Qdrant Edge shard, persisted under a folder.

    Writes first check that the volume keeps `min_free_mb` free (`core.diskspace`): the
    engine writes through memory maps, and a full volume would kill the process (SIGBUS).
    """

    def __init__(self, root: Path, collection: str, min_free_mb: float = 0.0) -> None:
        self._path = Path(root) / collection
        self._collection = collection
        self._min_free_mb = min_free_mb
        self._shard: qe.EdgeShard | None = None

    @property
    def path(self) -> Path:
        return self._path

    def _config(self, dim: int) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def ensure_collection(self, dim: int) -> None:
        if self._shard is not None:
            return
        schema_path = self._path / _SCHEMA_FILE
        try:
            if schema_path.exists():
                schema = json.loads(schema_path.read_text())
                check_dense(self._collection, int(schema["size"]), schema["distance"], dim)
                self._shard = qe.EdgeShard.load(str(self._path), self._config(dim))
            else:
                # A folder without schema.json is a create that died half-way: start over.
                if self._path.exists():
                    shutil.rmtree(self._path)
                require_free([self._path], self._min_free_mb)
                self._path.mkdir(parents=True)
                self._shard = qe.EdgeShard.create(str(self._path), self._config(dim))
                schema_path.write_text(json.dumps({"size": dim, "distance": DISTANCE}))
            for name in KEYWORD_FIELDS:  # idempotent: also upgrades shards made before
                self._shard.update(
                    qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword)
                )
        except (StoreError, StorageFullError):
            raise
        except Exception as exc:  # the engine's only exception type
            raise _engine_error("open", self._path, exc) from exc

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
        if action in ("upsert", "delete"):
            require_free([self._path], self._min_free_mb)
        try:
            return call()
        except Exception as exc:  # the engine's only exception type
            raise _engine_error(action, self._path, exc) from exc

    def search(self, query: SearchQuery) -> list[ScoredChunk]:
        request = _edge_request(plan_query(query))
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
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None
