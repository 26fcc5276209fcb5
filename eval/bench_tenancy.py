"""`python -m eval.bench_tenancy`: what tenant isolation costs on the embedded engine.

Every query of a multi-tenant deployment carries a `Scope`, which the adapters turn into
engine filter conditions (tenant, plus the caller's access groups or the whole-tenant
marker). This benchmark measures, in one run on the same synthetic data (384-d unit
vectors around shared topics, BM25 vectors of Zipf texts, one large tenant with half
the points and 19 small ones, a fifth of each tenant's documents restricted to one of
three groups), what that filter costs in latency against unscoped queries, whether the
filtered search still finds a tenant's exact top 10, and how little the rejected
alternative (query unscoped, drop other tenants' hits in Python) returns. It does so
twice: on the shard as ingestion leaves it (no dense HNSW yet), and after
`optimize()` builds the HNSW graph, where filtered search can lose results. Prints JSON;
the tenant-isolation ADR quotes it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.settings import SparseSettings
from core.types import (
    Chunk,
    IndexedChunk,
    Scope,
    SearchMode,
    SearchQuery,
    SparseVector,
)
from eval.report import emit_json
from ingest.chunk import chunk_id, content_hash
from ingest.embed import Bm25Encoder
from store.edge import EdgeStore

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Config = tuple[Scope | None, SearchMode, int]  # scope, mode, limit

TENANTS = 20  # one large, the rest small
LARGE_SHARE = 0.5  # of all points, owned by the large tenant
GROUPS = ("g0", "g1", "g2")
RESTRICTED_SHARE = 0.2  # of a tenant's documents, readable by one group only
CHUNKS_PER_DOC = 10
TOPICS = 100
TOP = 10
WIDE = 50  # the post-filter's over-fetch
MODES = (SearchMode.DENSE, SearchMode.HYBRID)


@dataclass(frozen=True, slots=True)
class Corpus:
    """The points and, per point, what the benchmark needs to compute ground truth."""

    points: list[IndexedChunk]
    vectors: Floats
    tenants: Ints  # tenant index per point
    groups: Ints  # group index per point, -1 when the whole tenant may read it
    ids: list[str]
    query_texts: list[str]
    query_vectors: Floats


@dataclass(frozen=True, slots=True)
class Run:
    """One pass of every query under one scope: latency and hits, best first."""

    latencies_ms: list[float]
    hits: list[list[Chunk]]


def _tenant(index: int) -> str:
    return f"t{index:02d}"


def _tenant_index(name: str) -> int:
    return int(name.removeprefix("t"))


def _unit(rows: Floats) -> Floats:
    normalised: Floats = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def make_corpus(n: int, n_queries: int, dim: int, seed: int) -> Corpus:
    """Documents of 10 chunks, each document on one topic and owned by one tenant.

    Vectors sit around topic centroids (cosine ~0.7 to their centroid) the way embeddings
    of one subject do; queries are drawn around the topics of random points.
    """
    rng = np.random.default_rng(seed)
    docs = -(-n // CHUNKS_PER_DOC)
    doc_tenant = np.empty(docs, dtype=np.int64)
    order = rng.permutation(docs)
    large = round(docs * LARGE_SHARE)
    doc_tenant[order[:large]] = 0
    doc_tenant[order[large:]] = 1 + np.arange(docs - large) % (TENANTS - 1)
    doc_group = np.where(
        rng.random(docs) < RESTRICTED_SHARE, rng.integers(len(GROUPS), size=docs), -1
    )
    doc_topic = rng.integers(TOPICS, size=docs)
    tenants = np.repeat(doc_tenant, CHUNKS_PER_DOC)[:n]
    groups = np.repeat(doc_group, CHUNKS_PER_DOC)[:n].astype(np.int64)
    topics = np.repeat(doc_topic, CHUNKS_PER_DOC)[:n]

    centroids = _unit(rng.standard_normal((TOPICS, dim)).astype(np.float32))
    noise = rng.standard_normal((n, dim)).astype(np.float32) / np.float32(np.sqrt(dim))
    vectors = _unit(centroids[topics] + noise)

    vocabulary = [f"term{i}" for i in range(20_000)]
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    zipf /= zipf.sum()
    texts = [" ".join(rng.choice(vocabulary, size=120, p=zipf)) for _ in range(n)]
    sparse = Bm25Encoder(SparseSettings()).encode_documents(texts)

    points: list[IndexedChunk] = []
    for i in range(n):
        digest = content_hash(texts[i])
        tenant = _tenant(int(tenants[i]))
        source = f"doc{i // CHUNKS_PER_DOC}.md"
        group = int(groups[i])
        chunk = Chunk(
            id=chunk_id(source, digest, 0, tenant),
            source=source,
            text=texts[i],
            title="",
            section="",
            page=None,
            index=i % CHUNKS_PER_DOC,
            content_hash=digest,
            tenant=tenant,
            access_groups=(GROUPS[group],) if group >= 0 else (),
        )
        points.append(IndexedChunk(chunk, vectors[i].tolist(), sparse[i]))

    query_topics = topics[rng.integers(n, size=n_queries)]
    query_noise = rng.standard_normal((n_queries, dim)).astype(np.float32)
    query_vectors = _unit(centroids[query_topics] + query_noise / np.float32(np.sqrt(dim)))
    query_texts = [" ".join(rng.choice(vocabulary, size=6, p=zipf)) for _ in range(n_queries)]
    return Corpus(
        points, vectors, tenants, groups, [p.chunk.id for p in points], query_texts, query_vectors
    )


def _visible_mask(corpus: Corpus, scope: Scope | None) -> npt.NDArray[np.bool_]:
    """What the scope may read, computed from the generator's arrays (not the engine)."""
    if scope is None:
        return np.ones(len(corpus.ids), dtype=np.bool_)
    allowed = [-1, *(GROUPS.index(g) for g in scope.access_groups)]
    mask: npt.NDArray[np.bool_] = (corpus.tenants == _tenant_index(scope.tenant)) & np.isin(
        corpus.groups, allowed
    )
    return mask


def _visible(chunk: Chunk, scope: Scope) -> bool:
    """The post-filter a Python caller would apply to an unscoped hit."""
    return chunk.tenant == scope.tenant and (
        not chunk.access_groups or bool(set(chunk.access_groups) & set(scope.access_groups))
    )


def _percentiles(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p95": round(ordered[int(len(ordered) * 0.95)], 2),
    }


def _run(
    store: EdgeStore, corpus: Corpus, sparse: Sequence[SparseVector], configs: Sequence[Config]
) -> list[Run]:
    """Every query under every config, interleaved query by query so that load from
    elsewhere on the machine slows all configs alike and the ratios hold."""
    runs = [Run([], []) for _ in configs]
    for vector, terms in zip(corpus.query_vectors, sparse, strict=True):
        for (scope, mode, limit), run in zip(configs, runs, strict=True):
            query = SearchQuery(
                dense=vector.tolist(),
                sparse=terms,
                limit=limit,
                mode=mode,
                prefetch_limit=WIDE,
                scope=scope,
            )
            start = time.perf_counter()
            found = store.search(query)
            run.latencies_ms.append((time.perf_counter() - start) * 1000)
            run.hits.append([h.chunk for h in found])
    return runs


def _exact_top(corpus: Corpus, scope: Scope | None) -> list[set[str]]:
    """Brute-force cosine top 10 among the points the scope may read, per query."""
    candidates = np.flatnonzero(_visible_mask(corpus, scope))
    scores = corpus.query_vectors @ corpus.vectors[candidates].T
    best = np.argsort(-scores, axis=1)[:, :TOP]
    return [{corpus.ids[int(candidates[j])] for j in row} for row in best]


def _recall(found: Sequence[Sequence[Chunk]], truth: Sequence[set[str]]) -> float:
    shares = [
        len({c.id for c in hits[:TOP]} & expected) / max(1, len(expected))
        for hits, expected in zip(found, truth, strict=True)
    ]
    return round(float(np.mean(shares)), 3)


def _measure(
    store: EdgeStore, corpus: Corpus, sparse: Sequence[SparseVector], callers: dict[str, Scope]
) -> dict[str, object]:
    """Latency, recall against exact search, and the post-filter's yield, on the shard as
    it is now."""
    info = store.shard.info()
    _run(store, corpus, sparse, [(None, m, TOP) for m in MODES])  # warm up, untimed
    scopes: dict[str, Scope | None] = {"baseline": None, **callers}
    keys = [(name, mode, TOP) for name in scopes for mode in MODES]
    keys += [("baseline", mode, WIDE) for mode in MODES]
    measured = _run(store, corpus, sparse, [(scopes[name], m, k) for name, m, k in keys])
    by_key = dict(zip(keys, measured, strict=True))
    runs = {(name, mode): by_key[name, mode, TOP] for name in scopes for mode in MODES}
    wide = {mode: by_key["baseline", mode, WIDE] for mode in MODES}

    latency = {
        name: {mode.value: _percentiles(runs[name, mode].latencies_ms) for mode in MODES}
        for name in scopes
    }
    ratio = {
        name: {
            mode.value: round(
                latency[name][mode.value]["p50"] / latency["baseline"][mode.value]["p50"], 2
            )
            for mode in MODES
        }
        for name in callers
    }
    exact = {
        name: _recall(runs[name, SearchMode.DENSE].hits, _exact_top(corpus, scope))
        for name, scope in scopes.items()
    }
    postfilter: dict[str, dict[str, dict[str, float]]] = {}
    for name in ("large", "small"):
        scope = callers[name]
        postfilter[name] = {}
        for mode in MODES:
            truth = [{c.id for c in hits} for hits in runs[name, mode].hits]
            for k, unscoped in ((TOP, runs["baseline", mode]), (WIDE, wide[mode])):
                kept = [[c for c in hits if _visible(c, scope)][:TOP] for hits in unscoped.hits]
                postfilter[name][f"{mode.value}_k{k}"] = {
                    "kept_of_10": round(float(np.mean([len(h) for h in kept])), 2),
                    "recall_at_10": _recall(kept, truth),
                }
    return {
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
        # Sparse vectors always count as indexed; twice the points means dense HNSW too.
        "dense_hnsw": info.indexed_vectors_count >= 2 * info.points_count,
        "latency_ms": latency,
        "p50_ratio_to_baseline": ratio,
        "dense_recall_at_10_vs_exact": exact,
        "postfilter_unscoped_then_drop": postfilter,
        "postfilter_k50_ms": {mode.value: _percentiles(wide[mode].latencies_ms) for mode in MODES},
    }


def _section(report: dict[str, object], phase: str) -> dict[str, object]:
    section = report[phase]
    assert isinstance(section, dict)
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = make_corpus(args.points, args.queries, args.dim, seed=11)
    bm25 = Bm25Encoder(SparseSettings())
    sparse = [bm25.encode_query(text) for text in corpus.query_texts]
    callers = {
        "large": Scope(_tenant(0)),
        "small": Scope(_tenant(1)),
        "small+group": Scope(_tenant(1), (GROUPS[1],)),
    }
    tenants: dict[str, object] = {"count": TENANTS, "groups_per_tenant": len(GROUPS)}
    for name, scope in callers.items():
        owned = int(np.sum(corpus.tenants == _tenant_index(scope.tenant)))
        readable = int(np.sum(_visible_mask(corpus, scope)))
        tenants[name] = {
            "tenant": scope.tenant,
            "groups": list(scope.access_groups),
            "owned_points": owned,
            "owned_share": round(owned / args.points, 3),
            "readable_points": readable,
        }
    tenants["restricted_share"] = round(float(np.mean(corpus.groups >= 0)), 3)

    report: dict[str, object] = {
        "engine": "qdrant-edge",
        "points": args.points,
        "queries": args.queries,
        "dim": args.dim,
        "tenants": tenants,
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = EdgeStore(Path(tmp), "bench")
        store.ensure_collection(args.dim)
        start = time.perf_counter()
        for i in range(0, len(corpus.points), 256):
            store.upsert(corpus.points[i : i + 256])
        report["upsert_s"] = round(time.perf_counter() - start, 2)
        report["as_ingested"] = _measure(store, corpus, sparse, callers)
        start = time.perf_counter()
        store.shard.optimize()
        report["optimize_s"] = round(time.perf_counter() - start, 2)
        report["optimized"] = _measure(store, corpus, sparse, callers)
        store.close()
    report["run_s"] = round(time.perf_counter() - started, 1)
    hnsw = {
        phase: "with" if _section(report, phase)["dense_hnsw"] else "without"
        for phase in ("as_ingested", "optimized")
    }
    report["notes"] = (
        f"as_ingested: the shard as upserts leave it ({hnsw['as_ingested']} dense HNSW; "
        "EdgeStore never calls optimize()); optimized: after EdgeShard.optimize() "
        f"({hnsw['optimized']} dense HNSW). Ratios: scoped p50 / unscoped p50, same "
        f"{args.queries} queries. Post-filter: unscoped top k, hits the caller may not read "
        "dropped in Python, recall against the scoped engine query's top 10 in the same mode. "
        "Exact recall: dense scoped top 10 against numpy brute force over what the scope "
        "may read."
    )
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
