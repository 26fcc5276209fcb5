"""The base corpus of the scale benchmark: real passages (SciFact abstracts, SQuAD
paragraphs) cut into chunks and real queries, embedded once with the project's embedder
and cached under ~/.cache/rag-template/bench-scale/, keyed by model and data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.settings import EmbeddingSettings
from eval.datasets import load_corpus
from eval.scale.grow import Floats, split_passage, unit

CACHE = Path.home() / ".cache" / "rag-template" / "bench-scale"
DATASETS = ("scifact", "squad-v1.1-dev")
CHUNK_CHARS = 600
QUERIES_PER_DATASET = 150
_VERSION = "1"  # bump when the chunking or query choice changes


@dataclass(frozen=True, slots=True)
class BaseCorpus:
    """Real chunks and queries with their dense vectors (unit length)."""

    texts: list[str]
    vectors: Floats
    queries: list[str]
    query_vectors: Floats
    model: str
    embed_s: float  # what embedding took when the cache was filled


def _queries(folder: Path, limit: int) -> list[str]:
    rows = (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [str(json.loads(row)["text"]) for row in rows if row.strip()]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def _key(data: Path, model: str) -> str:
    digest = hashlib.sha256(f"{_VERSION}|{model}|{CHUNK_CHARS}".encode())
    for name in DATASETS:
        for file in ("corpus.jsonl", "queries.jsonl"):
            digest.update((data / name / file).read_bytes())
    return digest.hexdigest()[:16]


def load_base(data: Path, settings: EmbeddingSettings | None = None) -> BaseCorpus:
    """The embedded base corpus, from the cache or embedded now (minutes, once)."""
    settings = settings or EmbeddingSettings()
    path = CACHE / f"{settings.model}-{_key(data, settings.model)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            meta = json.loads(str(cached["meta"]))
            return BaseCorpus(
                meta["texts"],
                cached["vectors"],
                meta["queries"],
                cached["query_vectors"],
                settings.model,
                float(meta["embed_s"]),
            )
    import time

    from ingest.embed import FastEmbedder

    texts: list[str] = []
    queries: list[str] = []
    for name in DATASETS:
        for doc in load_corpus(data / name):
            texts.extend(split_passage(f"{doc.title}. {doc.text}" if doc.title else doc.text))
        queries.extend(_queries(data / name, QUERIES_PER_DATASET))
    embedder = FastEmbedder(settings)
    start = time.perf_counter()
    vectors = unit(np.asarray(embedder.embed_documents(texts), dtype=np.float32))
    embed_s = time.perf_counter() - start
    query_vectors = unit(np.asarray(embedder.embed_queries(queries), dtype=np.float32))
    CACHE.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"texts": texts, "queries": queries, "embed_s": round(embed_s, 1)})
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vectors, query_vectors=query_vectors, meta=np.array(meta))
    tmp.replace(path)
    return BaseCorpus(texts, vectors, queries, query_vectors, settings.model, embed_s)
