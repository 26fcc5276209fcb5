from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.settings import SparseSettings
from eval.datasets import BeirDataset, BeirDoc
from eval.retrieval import build_index, collection_name
from ingest.chunk import StructureChunker
from ingest.embed import Bm25Encoder
from tests.fakes import HashEmbedder


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(16)
        self.documents = 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents += len(texts)
        return super().embed_documents(texts)


DATASET = BeirDataset(
    "tiny",
    [BeirDoc(f"d{i}", f"Title {i}", f"Body text number {i}. " * 30) for i in range(12)],
    {"q": "number 3"},
    {"q": {"d3": 1}},
)


def test_index_is_cached_per_pipeline_and_dense_vectors_are_reused(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    store = build_index(DATASET, embedder, Bm25Encoder(SparseSettings()), tmp_path)
    assert store.count() == 12
    store.close()
    again = build_index(DATASET, embedder, Bm25Encoder(SparseSettings()), tmp_path)
    again.close()
    assert embedder.documents == 12  # second run: nothing embedded, nothing indexed
    other_bm25 = build_index(DATASET, embedder, Bm25Encoder(SparseSettings(k=0.9)), tmp_path)
    assert other_bm25.count() == 12
    other_bm25.close()
    assert embedder.documents == 12  # new BM25 index, same dense vectors from the cache


def test_chunked_corpus_gets_its_own_collection(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    store = build_index(
        DATASET,
        embedder,
        Bm25Encoder(SparseSettings()),
        tmp_path,
        StructureChunker(200, 20),
        "chunked-200",
    )
    assert store.count() > 12
    store.close()
    assert collection_name(DATASET, "a") != collection_name(DATASET, "b")
