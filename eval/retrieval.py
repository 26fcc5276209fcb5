"""Retrieval quality on a BEIR-layout corpus: index once (cached), query, score with ranx.

The corpus goes into an isolated collection named by a hash of the corpus and of the
ingest-side pipeline config (embedder, BM25 parameters, chunking), so a second run with
the same setup skips ingestion; query-side settings (mode, fusion, MMR) never re-index.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.ports import Embedder, SparseEncoder
from core.types import Chunk, Element, ParsedDocument, SearchMode
from eval import eval_extra_missing
from eval.datasets import BeirDataset
from eval.stats import percentiles
from ingest.chunk import StructureChunker, content_hash, embedding_text
from ingest.pipeline import Indexer
from retrieval.search import Retriever
from store.edge import EdgeStore

METRICS = ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10", "map@100")


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    mode: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    queries: int


def corpus_chunks(dataset: BeirDataset, chunker: StructureChunker | None = None) -> list[Chunk]:
    """One chunk per document, or the chunker's chunks of it; `source` is the doc id."""
    chunks = []
    for doc in dataset.corpus:
        if chunker is None:
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"beir:{doc.id}")),
                    source=doc.id,
                    text=doc.text,
                    title=doc.title,
                    section="",
                    page=None,
                    index=0,
                    content_hash=content_hash(doc.text),
                )
            )
        else:
            parsed = ParsedDocument(doc.id, doc.title, (Element(doc.text, "NarrativeText"),), "")
            chunks += chunker.chunk(parsed)
    return chunks


def collection_name(dataset: BeirDataset, pipeline: str) -> str:
    digest = hashlib.sha256(pipeline.encode())
    for doc in dataset.corpus:
        digest.update(doc.id.encode())
        digest.update(content_hash(doc.title + doc.text).encode())
    return f"eval-{dataset.name}-{digest.hexdigest()[:12]}"


def build_index(
    dataset: BeirDataset,
    embedder: Embedder,
    sparse: SparseEncoder,
    root: Path,
    chunker: StructureChunker | None = None,
    chunking: str = "whole",
    progress: Callable[[int], None] | None = None,
) -> EdgeStore:
    """Open the cached eval collection for this corpus + pipeline, filling it if needed."""
    pipeline = f"{embedder.name}|{sparse.name}|{chunking}"
    store = EdgeStore(root, collection_name(dataset, pipeline))
    store.ensure_collection(embedder.dim)
    marker = store.path / "complete"
    if marker.exists():
        if progress is not None:
            progress(len(dataset.corpus))
        return store
    import numpy as np

    chunks = corpus_chunks(dataset, chunker)
    cache = _dense_cache_path(chunks, embedder, root / "embeddings")
    cached = np.load(cache) if cache.exists() else None
    computed: list[list[float]] = []
    indexer = Indexer(embedder, sparse, store, batch_size=64)
    done_docs: set[str] = set()
    for start in range(0, len(chunks), 256):
        batch = chunks[start : start + 256]
        if cached is not None:
            vectors = cached[start : start + 256].tolist()
        else:
            vectors = embedder.embed_documents([embedding_text(c) for c in batch])
            computed += vectors
        indexer.index(batch, vectors)
        new = {c.source for c in batch} - done_docs
        done_docs |= new
        if progress is not None:
            progress(len(new))
    if cached is None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, np.asarray(computed, dtype=np.float32))
    store.flush()
    marker.write_text(f"{len(chunks)} chunks\n{pipeline}\n")
    return store


def _dense_cache_path(chunks: list[Chunk], embedder: Embedder, folder: Path) -> Path:
    """Where the dense vectors of exactly these texts under this model are kept.

    Dense embedding is the slow part of indexing; BM25, chunk-independent and fusion
    experiments re-index the same texts, so their vectors are reused across runs.
    """
    digest = hashlib.sha256(embedder.name.encode())
    for chunk in chunks:
        digest.update(content_hash(embedding_text(chunk)).encode())
    return folder / f"{digest.hexdigest()[:16]}.npy"


def index_size_mb(store: EdgeStore) -> float:
    total = sum(p.stat().st_size for p in store.path.rglob("*") if p.is_file())
    return round(total / 2**20, 1)


def evaluate(
    dataset: BeirDataset,
    retriever: Retriever,
    modes: Sequence[SearchMode],
    depth: int = 100,
    fetch: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[RetrievalResult]:
    """Run every query in each mode and score the document rankings with ranx.

    Chunks are mapped to their document (the first, best-ranked chunk counts), so
    chunked and whole-document indexes are scored on the same qrels.
    """
    try:
        from ranx import Qrels, Run
        from ranx import evaluate as ranx_evaluate
    except ImportError as exc:
        raise eval_extra_missing(exc) from exc

    qrels = Qrels(dataset.qrels)
    results = []
    for mode in modes:
        run: dict[str, dict[str, float]] = {}
        latencies = []
        for query_id, text in dataset.queries.items():
            start = time.perf_counter()
            hits = retriever.search(text, top_k=fetch or depth, mode=mode)
            latencies.append((time.perf_counter() - start) * 1000)
            ranking: dict[str, float] = {}
            for rank, hit in enumerate(hits):
                if len(ranking) == depth:
                    break
                ranking.setdefault(hit.chunk.source, float(len(hits) - rank))
            run[query_id] = ranking or {"__none__": 0.0}
            if progress is not None:
                progress(1)
        scores: Any = ranx_evaluate(qrels, Run(run), list(METRICS))
        results.append(
            RetrievalResult(
                mode=mode.value,
                metrics={k: round(float(v), 4) for k, v in scores.items()},
                latency_ms=percentiles(latencies),
                queries=len(dataset.queries),
            )
        )
    return results
