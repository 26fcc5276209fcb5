"""Retrieval quality on a BEIR dataset: index once (cached), query, score with ranx.

The corpus goes into an isolated collection named by a hash of the corpus and of the
pipeline config, so a second run with the same setup skips ingestion entirely.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.ports import Embedder, SparseEncoder
from core.settings import RetrievalSettings
from core.types import Chunk, SearchMode
from eval.datasets import BeirDataset
from ingest.chunk import content_hash
from ingest.pipeline import Indexer
from retrieval.search import Retriever
from store.edge import EdgeStore

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    mode: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    queries: int


def corpus_chunks(dataset: BeirDataset) -> list[Chunk]:
    """One chunk per BEIR document (documents are passages or abstracts already)."""
    return [
        Chunk(
            id=str(_doc_uuid(doc.id)),
            source=doc.id,
            text=doc.text,
            title=doc.title,
            section="",
            page=None,
            index=0,
            content_hash=content_hash(doc.text),
        )
        for doc in dataset.corpus
    ]


def _doc_uuid(doc_id: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"beir:{doc_id}"))


def collection_name(dataset: BeirDataset, pipeline: str) -> str:
    digest = hashlib.sha256()
    for doc in dataset.corpus:
        digest.update(doc.id.encode())
        digest.update(content_hash(doc.title + doc.text).encode())
    digest.update(pipeline.encode())
    return f"eval-{dataset.name}-{digest.hexdigest()[:12]}"


def build_index(
    dataset: BeirDataset,
    embedder: Embedder,
    sparse: SparseEncoder,
    root: Path,
    progress: Callable[[int], None] | None = None,
) -> EdgeStore:
    """Open the cached eval collection for this corpus + pipeline, filling it if needed."""
    store = EdgeStore(root, collection_name(dataset, f"{embedder.name}|{sparse.name}"))
    store.ensure_collection(embedder.dim)
    marker = store.path / "complete"
    if marker.exists():
        return store
    chunks = corpus_chunks(dataset)
    indexer = Indexer(embedder, sparse, store, batch_size=64)
    for start in range(0, len(chunks), 256):
        batch = chunks[start : start + 256]
        indexer.index(batch)
        if progress is not None:
            progress(len(batch))
    store.flush()
    marker.write_text(str(len(chunks)))
    return store


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2)}


def evaluate(
    dataset: BeirDataset,
    retriever: Retriever,
    modes: Sequence[SearchMode],
    depth: int = 100,
    progress: Callable[[int], None] | None = None,
) -> list[RetrievalResult]:
    """Run every query in each mode and score the rankings with ranx."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    qrels = Qrels(dataset.qrels)
    results = []
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        latencies = []
        for query_id, text in dataset.queries.items():
            start = time.perf_counter()
            hits = retriever.search(text, top_k=depth, mode=mode)
            latencies.append((time.perf_counter() - start) * 1000)
            ranking: dict[str, float] = {}
            for rank, hit in enumerate(hits):
                ranking.setdefault(hit.chunk.source, float(depth - rank))
            run[query_id] = ranking or {"__none__": 0.0}
            if progress is not None:
                progress(1)
        scores: Any = ranx_evaluate(qrels, Run(run), list(METRICS))
        results.append(
            RetrievalResult(
                mode=mode.value,
                metrics={k: round(float(v), 4) for k, v in scores.items()},
                latency_ms=_percentiles(latencies),
                queries=len(dataset.queries),
            )
        )
    return results


def default_retrieval_settings(**overrides: Any) -> RetrievalSettings:
    return RetrievalSettings(**overrides)
