"""`make bench-store`: the embedded engine against qdrant-client's local mode, same data.

Synthetic but realistic-shaped points (384-d unit vectors, BM25 vectors of ~120-token
texts over a Zipf vocabulary), identical for every adapter, measured in one run so the
ratios hold on any machine. Prints JSON; the ADR quotes it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from core.settings import SparseSettings
from core.types import Chunk, IndexedChunk, SearchMode, SearchQuery
from eval.report import emit_json
from ingest.chunk import chunk_id, content_hash
from ingest.embed import Bm25Encoder
from store.edge import EdgeStore
from store.remote import QdrantServerStore


def _points(n: int, dim: int, seed: int) -> tuple[list[IndexedChunk], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    vocabulary = [f"term{i}" for i in range(20_000)]
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    zipf /= zipf.sum()
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bm25 = Bm25Encoder(SparseSettings())
    texts = [" ".join(rng.choice(vocabulary, size=120, p=zipf)) for _ in range(n)]
    sparse = bm25.encode_documents(texts)
    points = []
    for i in range(n):
        digest = content_hash(texts[i])
        chunk = Chunk(
            id=chunk_id(f"doc{i // 10}", digest),
            source=f"doc{i // 10}",
            text=texts[i],
            title="",
            section="",
            page=None,
            index=i % 10,
            content_hash=digest,
        )
        points.append(IndexedChunk(chunk, vectors[i].tolist(), sparse[i]))
    queries = [" ".join(rng.choice(vocabulary, size=6, p=zipf)) for _ in range(200)]
    qvec = rng.standard_normal((len(queries), dim)).astype(np.float32)
    return points, queries, qvec / np.linalg.norm(qvec, axis=1, keepdims=True)


def _measure(
    store: object, points: list[IndexedChunk], queries: list[str], qvec: np.ndarray, dim: int
) -> dict[str, object]:
    from core.ports import VectorStore

    assert isinstance(store, VectorStore)
    bm25 = Bm25Encoder(SparseSettings())
    store.ensure_collection(dim)
    start = time.perf_counter()
    for i in range(0, len(points), 256):
        store.upsert(points[i : i + 256])
    upsert_s = time.perf_counter() - start
    result: dict[str, object] = {
        "upsert_s": round(upsert_s, 2),
        "upsert_points_per_s": round(len(points) / upsert_s),
    }
    for mode in (SearchMode.DENSE, SearchMode.HYBRID):
        latencies = []
        for text, vector in zip(queries, qvec, strict=True):
            query = SearchQuery(
                dense=vector.tolist(),
                sparse=bm25.encode_query(text),
                limit=10,
                mode=mode,
                prefetch_limit=50,
            )
            t = time.perf_counter()
            store.search(query)
            latencies.append((time.perf_counter() - t) * 1000)
        ordered = sorted(latencies)
        result[f"{mode.value}_ms"] = {
            "p50": round(ordered[len(ordered) // 2], 2),
            "p95": round(ordered[int(len(ordered) * 0.95)], 2),
        }
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    points, queries, qvec = _points(args.points, args.dim, seed=7)
    report: dict[str, object] = {"points": args.points, "dim": args.dim}
    with tempfile.TemporaryDirectory() as tmp:
        report["qdrant-edge"] = _measure(
            EdgeStore(Path(tmp), "bench"), points, queries, qvec, args.dim
        )
        report["qdrant-client :memory:"] = _measure(
            QdrantServerStore(QdrantClient(":memory:"), "bench"), points, queries, qvec, args.dim
        )
    edge = report["qdrant-edge"]
    local = report["qdrant-client :memory:"]
    assert isinstance(edge, dict)
    assert isinstance(local, dict)
    report["hybrid_p50_speedup"] = round(local["hybrid_ms"]["p50"] / edge["hybrid_ms"]["p50"], 1)
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
