"""Production knobs of both store adapters: what they create, query with, and report.

Qdrant Edge runs for real. There is no Qdrant server here, so the qdrant-client adapter
talks to a small fake HTTP server that records each request and answers as Qdrant's REST
API does: the test checks the JSON a real cluster would receive.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from core.errors import SchemaMismatchError
from core.settings import StoreSettings
from core.types import Chunk, IndexedChunk, Scope, SearchMode, SearchQuery, SparseVector
from store import open_store
from store.edge import EdgeStore
from store.remote import ClusterTopology, QdrantServerStore
from store.tuning import IndexTuning

pytestmark = pytest.mark.integration

DIM = 8
TUNED = IndexTuning(
    hnsw_m=8, hnsw_ef_construct=64, hnsw_ef=96, quantization="int8", oversampling=3.0
)


def _point(i: int, tenant: str = "acme") -> IndexedChunk:
    chunk = Chunk(
        id=f"00000000-0000-0000-0000-{i:012d}",
        source=f"doc{i}.md",
        text=f"text {i}",
        title="",
        section="",
        page=None,
        index=0,
        content_hash=str(i),
        tenant=tenant,
    )
    return IndexedChunk(chunk, _dense(i), SparseVector((i,), (1.0,)))


def _dense(i: int) -> list[float]:
    """A distinct direction per i (cosine: no two points alike)."""
    return [float(x) for x in np.random.default_rng(i).standard_normal(DIM)]


def _query(i: int, mode: SearchMode = SearchMode.HYBRID) -> SearchQuery:
    return SearchQuery(
        dense=_dense(i),
        sparse=SparseVector((i,), (1.0,)),
        limit=3,
        mode=mode,
        prefetch_limit=10,
        scope=Scope(tenant="acme", access_groups=()),
    )


# --- Qdrant Edge, for real -----------------------------------------------------------


def test_edge_builds_a_tuned_quantized_shard_and_searches_it(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, "docs", tuning=TUNED)
    store.ensure_collection(DIM)
    store.upsert([_point(i) for i in range(50)])
    for mode in (SearchMode.DENSE, SearchMode.HYBRID):
        assert store.search(_query(7, mode))[0].chunk.id == _point(7).chunk.id
    assert store.shard.info().payload_schema["tenant"].params.is_tenant  # type: ignore[union-attr]
    store.close()
    engine = json.loads((tmp_path / "docs" / "edge_config.json").read_text())
    assert engine["hnsw_config"]["m"] == 8
    assert engine["hnsw_config"]["ef_construct"] == 64
    assert engine["quantization_config"]["scalar"]["type"] == "int8"
    schema = json.loads((tmp_path / "docs" / "schema.json").read_text())
    assert schema["index"]["quantization"] == "int8"


def test_edge_reports_a_shard_built_otherwise_and_keeps_it_as_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = EdgeStore(tmp_path, "docs", tuning=TUNED)
    store.ensure_collection(DIM)
    store.upsert([_point(i) for i in range(20)])
    store.close()

    reopened = EdgeStore(tmp_path, "docs", tuning=IndexTuning(hnsw_m=32))
    with caplog.at_level(logging.WARNING, logger="store.tuning"):
        reopened.ensure_collection(DIM)
    message = caplog.text
    assert "hnsw_m: configured 32, collection has 8" in message
    assert "quantization: configured 'none', collection has 'int8'" in message
    assert "rag reindex" in message
    assert reopened.search(_query(3))[0].chunk.id == _point(3).chunk.id
    reopened.close()
    engine = json.loads((tmp_path / "docs" / "edge_config.json").read_text())
    assert engine["hnsw_config"]["m"] == 8  # not silently re-tuned by the optimizer

    strict = EdgeStore(tmp_path, "docs", tuning=IndexTuning(hnsw_m=32, on_drift="error"))
    with pytest.raises(SchemaMismatchError, match="hnsw_m: configured 32, collection has 8"):
        strict.ensure_collection(DIM)


def test_edge_shard_from_before_tuning_compares_with_engine_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = EdgeStore(tmp_path, "docs")
    store.ensure_collection(DIM)
    store.close()
    schema_path = tmp_path / "docs" / "schema.json"
    schema = json.loads(schema_path.read_text())
    del schema["index"]
    schema_path.write_text(json.dumps(schema))
    with caplog.at_level(logging.WARNING, logger="store.tuning"):
        defaults = EdgeStore(tmp_path, "docs")
        defaults.ensure_collection(DIM)  # built with the engine's defaults: nothing to say
        defaults.close()
        assert caplog.text == ""
        drifted = EdgeStore(tmp_path, "docs", tuning=IndexTuning(quantization="binary"))
        drifted.ensure_collection(DIM)
        drifted.close()
    assert "quantization: configured 'binary', collection has 'none'" in caplog.text


def test_open_store_passes_the_settings_to_the_edge_adapter(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path, hnsw_m=12, quantization="binary", tenant_index=False)
    store = open_store(settings, "docs")
    store.ensure_collection(DIM)
    assert isinstance(store, EdgeStore)
    assert not store.shard.info().payload_schema["tenant"].params.is_tenant  # type: ignore[union-attr]
    store.close()
    engine = json.loads((tmp_path / "docs" / "edge_config.json").read_text())
    assert engine["hnsw_config"]["m"] == 12
    assert "binary" in engine["quantization_config"]


# --- qdrant-client against a fake Qdrant REST API ---------------------------------------


def _collection_info(
    m: int, quantization: dict[str, Any] | None, schema: dict[str, Any]
) -> dict[str, Any]:
    return {
        "status": "green",
        "optimizer_status": "ok",
        "segments_count": 1,
        "points_count": 0,
        "indexed_vectors_count": 0,
        "config": {
            "params": {
                "vectors": {"dense": {"size": DIM, "distance": "Cosine", "on_disk": False}},
                "sparse_vectors": {"bm25": {"modifier": "idf"}},
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": True,
            },
            "hnsw_config": {"m": m, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "flush_interval_sec": 5,
            },
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": quantization,
        },
        "payload_schema": schema,
    }


@dataclass
class FakeQdrant:
    """Records (method, path, JSON body); answers with `collection` as the existing one
    (None: no collection yet)."""

    collection: dict[str, Any] | None = None
    requests: list[tuple[str, str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, body: Any) -> Any:
        self.requests.append((method, path, body))
        path = path.split("?")[0]
        if path == "/":
            return {"title": "qdrant", "version": "1.16.0"}
        if path.endswith("/exists"):
            return {"exists": self.collection is not None}
        if method == "GET" and path.startswith("/collections/"):
            return self.collection
        if path.endswith("/points/query"):
            return {"points": []}
        if path.endswith("/index"):
            return {"operation_id": 1, "status": "completed"}
        return True

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [b for m, p, b in self.requests if m == method and p.split("?")[0].endswith(suffix)]


@pytest.fixture
def fake_qdrant() -> Iterator[tuple[FakeQdrant, str]]:
    fake = FakeQdrant()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            result = fake.answer(self.command, self.path, body)
            data = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _reply  # noqa: N815 (http.server names)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _server_store(url: str, tuning: IndexTuning, topology: ClusterTopology) -> QdrantServerStore:
    return QdrantServerStore(
        QdrantClient(url=url, check_compatibility=False), "docs", tuning, topology
    )


def test_client_creates_the_collection_with_the_production_knobs(
    fake_qdrant: tuple[FakeQdrant, str],
) -> None:
    fake, url = fake_qdrant
    store = _server_store(url, TUNED, ClusterTopology(6, 2, 2))
    store.ensure_collection(DIM)
    (create,) = fake.bodies("PUT", "/collections/docs")
    assert create["shard_number"] == 6
    assert create["replication_factor"] == 2
    assert create["write_consistency_factor"] == 2
    assert create["on_disk_payload"] is True
    assert create["hnsw_config"] == {"m": 8, "ef_construct": 64, "full_scan_threshold": 10000}
    assert create["quantization_config"] == {
        "scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}
    }
    assert create["vectors"]["dense"] == {"size": DIM, "distance": "Cosine", "on_disk": False}
    indexes = {b["field_name"]: b["field_schema"] for b in fake.bodies("PUT", "/index")}
    assert indexes["tenant"] == {"type": "keyword", "is_tenant": True}
    assert indexes["access_groups"] == "keyword"
    assert set(indexes) == {
        "tenant",
        "access_groups",
        "source",
        "meta.scope",
        "meta.corpus",
        "meta.cited_sources",
    }

    store.search(_query(1))
    (query,) = fake.bodies("POST", "/points/query")
    params = {"hnsw_ef": 96, "quantization": {"rescore": True, "oversampling": 3.0}}
    assert [p["params"] for p in query["prefetch"]] == [params, params]
    assert "params" not in query or query["params"] is None  # fusion: nothing to search
    store.search(_query(1, SearchMode.DENSE))
    dense = fake.bodies("POST", "/points/query")[-1]
    assert dense["params"]["hnsw_ef"] == 96
    store.close()


def test_client_reports_a_collection_built_otherwise_and_adds_missing_indexes(
    fake_qdrant: tuple[FakeQdrant, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, url = fake_qdrant
    fake.collection = _collection_info(
        m=32,
        quantization=None,
        schema={"tenant": {"data_type": "keyword", "points": 0}},  # not a tenant index
    )
    store = _server_store(url, TUNED, ClusterTopology(shard_number=6))
    with caplog.at_level(logging.WARNING, logger="store.tuning"):
        store.ensure_collection(DIM)
    assert "hnsw_m: configured 8, collection has 32" in caplog.text
    assert "quantization: configured 'int8', collection has 'none'" in caplog.text
    assert "shard_number: configured 6, collection has 1" in caplog.text
    assert not fake.bodies("PUT", "/collections/docs")  # used as built, never re-created
    indexes = {b["field_name"]: b["field_schema"] for b in fake.bodies("PUT", "/index")}
    assert indexes["tenant"] == {"type": "keyword", "is_tenant": True}  # upgraded
    assert "source" in indexes

    strict = _server_store(url, IndexTuning(on_drift="error"), ClusterTopology())
    with pytest.raises(SchemaMismatchError, match="hnsw_m: configured 16, collection has 32"):
        strict.ensure_collection(DIM)
    store.close()
    strict.close()
