"""What a model reads for a chunk: the one text the embedder (ingest side) and the
cross-encoder (query side) both score, so neither side has to import the other."""

from __future__ import annotations

from core.types import Chunk


def embedding_text(chunk: Chunk) -> str:
    """What the models see: the document title and section give a chunk its context."""
    heading = " > ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{heading}\n{chunk.text}" if heading else chunk.text
