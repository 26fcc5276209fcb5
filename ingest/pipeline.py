"""The ingest data path: parse -> chunk -> embed -> upsert, one stage per call.

Re-ingesting a source upserts its chunks under deterministic ids, then deletes the
source's points that the new version no longer has: no duplicates, no orphans, and the
old version stays searchable until the new one is in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import IngestError
from core.ports import Embedder, Parser, SparseEncoder, VectorStore
from core.types import Chunk, IndexedChunk, ParsedDocument
from ingest.chunk import StructureChunker, embedding_text

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    """What one run did, per source; failures carry the reason and never stop the batch."""

    documents: int = 0
    chunks: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


class Indexer:
    """Embeds chunks (dense + sparse) in batches and writes them to the store."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        batch_size: int = 64,
    ) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._store = store
        self._batch_size = batch_size
        store.ensure_collection(embedder.dim)

    def index(
        self, chunks: Sequence[Chunk], dense_vectors: Sequence[Sequence[float]] | None = None
    ) -> None:
        """Embed and upsert in batches; `dense_vectors` (one per chunk) skips the dense model."""
        for start in range(0, len(chunks), self._batch_size):
            batch = chunks[start : start + self._batch_size]
            texts = [embedding_text(chunk) for chunk in batch]
            if dense_vectors is None:
                dense = self._embedder.embed_documents(texts)
            else:
                dense = [list(v) for v in dense_vectors[start : start + self._batch_size]]
            sparse = self._sparse.encode_documents(texts)
            self._store.upsert(
                [IndexedChunk(c, d, s) for c, d, s in zip(batch, dense, sparse, strict=True)]
            )

    def replace_source(self, source: str, chunks: Sequence[Chunk]) -> None:
        """Write a source's new chunks, then drop the ones it no longer has."""
        self.index(chunks)
        self._store.delete_by_source(source, keep_ids=[c.id for c in chunks])


def discover(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under `root` (or `root` itself) with a supported suffix, in a stable order."""
    allowed = {s.lower() for s in suffixes}
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in allowed)


def ingest_paths(
    paths: Sequence[Path],
    parser: Parser,
    chunker: StructureChunker,
    indexer: Indexer,
    root: Path | None = None,
    on_document: Callable[[ParsedDocument, int], None] | None = None,
) -> IngestReport:
    """Parse, chunk and index each file; one bad file is recorded and skipped.

    A document's source id is its path relative to `root`, so ids stay stable wherever
    the folder is checked out.
    """
    report = IngestReport()
    for path in paths:
        source = path.relative_to(root).as_posix() if root else path.name
        try:
            document = parser.parse(str(path), source)
            chunks = chunker.chunk(document)
        except IngestError as exc:
            log.warning("skipped %s: %s", path, exc)
            report.failed[str(path)] = str(exc)
            continue
        indexer.replace_source(document.source, chunks)
        report.documents += 1
        report.chunks += len(chunks)
        if on_document is not None:
            on_document(document, len(chunks))
    return report
