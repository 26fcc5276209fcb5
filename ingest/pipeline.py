"""The ingest data path: parse -> chunk -> embed -> upsert, one stage per call.

Re-ingesting a source upserts its chunks under deterministic ids, then deletes the
source's points that the new version no longer has: no duplicates, no orphans, and the
old version stays searchable until the new one is in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import IngestError
from core.ports import Embedder, Parser, SparseEncoder, VectorStore
from core.types import Chunk, IndexedChunk, ParsedDocument
from ingest.chunk import StructureChunker, embedding_text
from ingest.manifest import SqliteManifest

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    """What one run did, per source; failures carry the reason and never stop the batch."""

    documents: int = 0
    chunks: int = 0
    skipped: int = 0
    pruned: list[str] = field(default_factory=list)
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

    def delete_source(self, source: str) -> None:
        self._store.delete_by_source(source)


def discover(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Files under `root` (or `root` itself) with a supported suffix, in a stable order."""
    allowed = {s.lower() for s in suffixes}
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in allowed)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_paths(
    paths: Sequence[Path],
    parser: Parser,
    chunker: StructureChunker,
    indexer: Indexer,
    root: Path | None = None,
    manifest: SqliteManifest | None = None,
    prune: bool = False,
    on_document: Callable[[ParsedDocument, int], None] | None = None,
) -> IngestReport:
    """Parse, chunk and index each file; one bad file is recorded and skipped.

    A document's source id is its path relative to `root`, so ids stay stable wherever
    the folder is checked out. With a manifest, unchanged files are skipped without
    parsing, an interrupted run is completed by the next one, and `prune` removes the
    chunks of sources that are no longer among `paths`.
    """
    report = IngestReport()
    seen: set[str] = set()
    for path in paths:
        source = path.relative_to(root).as_posix() if root else path.name
        seen.add(source)
        try:
            digest = file_hash(path)
        except OSError as exc:
            report.failed[str(path)] = f"{path}: cannot read ({exc.strerror or exc})"
            continue
        previous = manifest.get(source) if manifest else None
        if previous and previous.state == "done" and previous.content_hash == digest:
            report.skipped += 1
            continue
        try:
            document = parser.parse(str(path), source)
            chunks = chunker.chunk(document)
        except IngestError as exc:
            log.warning("skipped %s: %s", path, exc)
            report.failed[str(path)] = str(exc)
            continue
        ids = [c.id for c in chunks]
        if manifest:
            manifest.begin(source, digest, ids)
        indexer.replace_source(document.source, chunks)
        if manifest:
            manifest.commit(source, digest, ids)
        report.documents += 1
        report.chunks += len(chunks)
        if on_document is not None:
            on_document(document, len(chunks))
    if prune and manifest:
        for record in manifest.sources():
            if record.source not in seen:
                indexer.delete_source(record.source)
                manifest.remove(record.source)
                report.pruned.append(record.source)
    return report
