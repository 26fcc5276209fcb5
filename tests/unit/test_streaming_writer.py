from __future__ import annotations

import pytest

from core.settings import SparseSettings
from core.types import Chunk
from ingest.embed import Bm25Encoder
from ingest.pipeline import Indexer, StreamingWriter
from tests.fakes import HashEmbedder, MemoryStore


def _chunks(source: str, n: int) -> list[Chunk]:
    return [
        Chunk(f"{source}-{i}", source, f"text {i} of {source}", "", "", None, i, "h")
        for i in range(n)
    ]


def test_small_sources_share_full_batches_and_finish_after_their_last_write() -> None:
    store = MemoryStore()
    done: list[tuple[str, int]] = []
    writer = StreamingWriter(
        Indexer(HashEmbedder(8), Bm25Encoder(SparseSettings()), store, 4),
        lambda source, ids: done.append((source, len(ids))),
    )
    writer.add("a", _chunks("a", 3))
    writer.add("b", _chunks("b", 3))  # fills batch 1 (a0-a2, b0), starts batch 2
    assert done == []  # batch 1 is still being written when b is added
    writer.add("c", _chunks("c", 2))
    writer.add("empty", [])
    writer.close()
    assert store.writes == [4, 4]
    assert sorted(done) == [("a", 3), ("b", 3), ("c", 2), ("empty", 0)]
    assert ("default", "empty", ()) in store.deletes  # an emptied source loses its old points
    assert len(store.points) == 8


def test_a_failed_write_surfaces_and_its_sources_are_not_finished() -> None:
    store = MemoryStore(fail_on_write=0)
    done: list[str] = []
    writer = StreamingWriter(
        Indexer(HashEmbedder(8), Bm25Encoder(SparseSettings()), store, 2),
        lambda source, ids: done.append(source),
    )
    writer.add("a", _chunks("a", 2))  # batch 1 is submitted; its write fails in the thread
    with pytest.raises(RuntimeError, match="disk full"):
        writer.close()
    assert done == []
