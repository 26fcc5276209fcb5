"""`make bench-ingest`: ingest throughput against the physical limit and the textbook.

Three runs over the same corpus, in one process, so the ratios hold on any machine:

1. the pipeline: chunk -> dense + BM25 -> upsert into a fresh Qdrant Edge collection,
   through the same `StreamingWriter` as `rag ingest`;
2. embed only: the same chunk texts through the same embedder in the same batches, the
   upper bound of this pipeline on this machine;
3. the textbook LangChain pipeline: Documents -> RecursiveCharacterTextSplitter ->
   `QdrantVectorStore.from_documents` (in-memory qdrant-client) with the same model.

Prints and writes JSON: chunks, seconds, chunks_per_s, embed_only_chunks_per_s, ratio,
langchain_chunks_per_s, docs_per_s for both pipelines, peak_rss_mb: the peak resident
memory of runs 1-2 summed over this process and its children, sampled in a thread
(`eval.bench_memory.TreeMemory`; run 3 is left out, it is LangChain's memory).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from core.offline import apply_offline_defaults
from core.settings import get_settings
from core.types import Element, ParsedDocument
from eval.bench_memory import TreeMemory
from eval.datasets import load_corpus
from eval.report import emit_json
from ingest.chunk import StructureChunker, embedding_text
from ingest.embed import Bm25Encoder, FastEmbedder
from ingest.pipeline import Indexer, StreamingWriter
from store.edge import EdgeStore


def _langchain_run(
    docs: list[Any], embedder: FastEmbedder, chunk_size: int, overlap: int
) -> tuple[int, float]:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class SameModel(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text)

    start = time.perf_counter()
    loaded = [
        Document(page_content=f"{d.title}\n{d.text}", metadata={"source": d.id}) for d in docs
    ]
    splits = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size, chunk_overlap=overlap
    ).split_documents(loaded)
    QdrantVectorStore.from_documents(
        splits, SameModel(), location=":memory:", collection_name="bench"
    )
    return len(splits), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path, help="BEIR folder (corpus.jsonl)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--limit", type=int, help="only the first n documents")
    args = parser.parse_args()
    apply_offline_defaults()
    settings = get_settings()
    corpus = load_corpus(args.data)
    docs = corpus[: args.limit] if args.limit else corpus
    embedder = FastEmbedder(settings.embedding)
    chunker = StructureChunker(settings.ingest.chunk_size, settings.ingest.chunk_overlap)
    batch = settings.ingest.batch_size
    # Warm the ONNX session on real, full-length texts so neither timed run pays for it.
    warm = [
        embedding_text(c)
        for d in docs[:batch]
        for c in chunker.chunk(
            ParsedDocument(d.id, d.title, (Element(d.text, "NarrativeText"),), "")
        )
    ]
    embedder.embed_documents(warm[:batch])

    with TreeMemory() as memory:
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeStore(Path(tmp), "bench")
            indexer = Indexer(embedder, Bm25Encoder(settings.sparse), store, batch)
            writer = StreamingWriter(indexer)
            start = time.perf_counter()
            all_chunks = []
            for doc in docs:
                chunks = chunker.chunk(
                    ParsedDocument(doc.id, doc.title, (Element(doc.text, "NarrativeText"),), "")
                )
                all_chunks += chunks
                writer.add(doc.id, chunks)
            writer.close()
            seconds = time.perf_counter() - start
            stored = store.count()
            store.close()

        texts = [embedding_text(c) for c in all_chunks]
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            embedder.embed_documents(texts[i : i + batch])
        embed_only = time.perf_counter() - start

    lc_chunks, lc_seconds = _langchain_run(
        docs, embedder, settings.ingest.chunk_size, settings.ingest.chunk_overlap
    )
    report = {
        "documents": len(docs),
        "chunks": len(all_chunks),
        "stored_points": stored,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(all_chunks) / seconds, 2),
        "embed_only_chunks_per_s": round(len(texts) / embed_only, 2),
        "ratio": round(embed_only / seconds, 3),
        "langchain_chunks": lc_chunks,
        "langchain_seconds": round(lc_seconds, 2),
        "langchain_chunks_per_s": round(lc_chunks / lc_seconds, 2),
        "speedup_vs_langchain": round((len(all_chunks) / seconds) / (lc_chunks / lc_seconds), 2),
        # Chunk counts differ (LangChain cuts smaller windows, without titles): documents
        # per second compares the two pipelines on the same input.
        "docs_per_s": round(len(docs) / seconds, 2),
        "langchain_docs_per_s": round(len(docs) / lc_seconds, 2),
        "peak_rss_mb": round(memory.peak_mb, 1),
        "config": {
            "embedding_model": embedder.name,
            "batch_size": batch,
            "embedding_batch_size": settings.embedding.batch_size,
            "chunk_size": settings.ingest.chunk_size,
            "chunk_overlap": settings.ingest.chunk_overlap,
            "store": "qdrant-edge",
        },
    }
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
