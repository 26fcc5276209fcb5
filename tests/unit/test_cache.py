"""The semantic cache on the real embedded engine: threshold, scope, TTL, invalidation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.types import (
    Answer,
    Chunk,
    Citation,
    Provenance,
    QueryVector,
    RequestContext,
    Rung,
    Usage,
    document_key,
)
from gateway.cache import SOURCE, CachedAnswer, SemanticCache, from_point, to_point
from gateway.ledger import SqlLedger
from store.edge import EdgeStore
from tests.fakes import GroundedLlm, HashEmbedder

Parts = tuple[SemanticCache, "Clock", SqlLedger]
Q = "how are chunk ids made in the ingest pipeline"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _answer(question: str, *sources: str) -> Answer:
    return Answer(
        question,
        "They are uuid5 hashes [1].",
        tuple(Citation(i, s, s, "", None, f"id-{i}", "quote") for i, s in enumerate(sources, 1)),
        found=True,
        generator="cheap",
        provenance=Provenance(
            rung=Rung.LLM,
            model="cheap",
            route="r",
            usage=Usage(900, 100),
            cost_usd=0.002,
            prompt="grounded_answer.v1",
            grounded=True,
        ),
    )


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    clock = Clock()
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    cache = SemanticCache(
        EdgeStore(tmp_path / "store", "cache"),
        HashEmbedder(64),
        threshold=0.9,
        ttl_s=60,
        ledger=ledger,
        clock=clock,
    )
    yield cache, clock, ledger
    cache.close()
    ledger.close()


def test_the_same_or_a_close_question_hits_and_the_saving_is_metered(parts: Parts) -> None:
    cache, _, ledger = parts
    context = RequestContext(tenant="acme")
    cache.put(Q, context, "v1", _answer(Q, "ids.md"))
    hit = cache.lookup("How are chunk ids made in the ingest pipeline?", context, "v1")
    assert hit is not None
    assert hit.provenance is not None
    assert hit.provenance.rung is Rung.CACHE
    assert hit.provenance.saved_usd == pytest.approx(0.002)
    assert hit.citations[0].source == "ids.md"
    line = ledger.report()[0]
    assert (line.cache_hits, line.saved_tokens) == (1, 1000)
    assert line.saved_usd == pytest.approx(0.002)


def test_a_different_question_misses(parts: Parts) -> None:
    cache, _, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "ids.md"))
    assert cache.lookup("what does the blue green alias switch do", RequestContext(), "v1") is None


@pytest.mark.parametrize(
    "other",
    [
        RequestContext(tenant="globex"),
        RequestContext(tenant="acme", access_groups=("hr",)),
        RequestContext(tenant="acme", access_groups=("eng", "hr")),
    ],
)
def test_answers_never_cross_tenants_or_access_groups(parts: Parts, other: RequestContext) -> None:
    cache, _, _ = parts
    cache.put(Q, RequestContext(tenant="acme", access_groups=("eng",)), "v1", _answer(Q, "a.md"))
    assert cache.lookup(Q, other, "v1") is None
    same = RequestContext(tenant="acme", access_groups=("eng",))
    assert cache.lookup(Q, same, "v1") is not None


def test_a_new_corpus_version_starts_empty(parts: Parts) -> None:
    cache, _, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "a.md"))
    assert cache.lookup(Q, RequestContext(), "v2") is None


def test_expired_entries_miss_but_serve_as_the_stale_last_rung(parts: Parts) -> None:
    cache, clock, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "a.md"))
    clock.now += 61
    assert cache.lookup(Q, RequestContext(), "v1") is None
    stale = cache.lookup(Q, RequestContext(), "v1", allow_stale=True)
    assert stale is not None
    assert stale.provenance is not None
    assert stale.provenance.rung is Rung.STALE_CACHE


def test_reingesting_or_deleting_a_cited_document_invalidates_its_answers(parts: Parts) -> None:
    cache, _, _ = parts
    other = "what does the blue green alias switch do"
    cache.put(Q, RequestContext(), "v1", _answer(Q, "ids.md", "chunking.md"))
    cache.put(other, RequestContext(), "v1", _answer(other, "aliases.md"))
    assert cache.count() == 2
    cache.invalidate(["globex/chunking.md"])  # another tenant's chunking.md: no effect
    assert cache.lookup(Q, RequestContext(), "v1") is not None
    cache.invalidate([document_key("default", "chunking.md")])
    assert cache.lookup(Q, RequestContext(), "v1") is None
    assert cache.lookup(other, RequestContext(), "v1") is not None
    assert cache.count() == 1


def test_putting_the_same_question_twice_keeps_one_entry(parts: Parts) -> None:
    cache, _, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "a.md"))
    cache.put(
        "  How are chunk IDs made in the ingest pipeline ",
        RequestContext(),
        "v1",
        _answer(Q, "a.md"),
    )
    assert cache.count() == 1


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.queries = 0

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return super().embed_query(text)


def test_a_cache_miss_embeds_the_question_once_for_cache_and_retrieval(tmp_path: Path) -> None:
    from core.settings import RetrievalSettings, SparseSettings
    from ingest.embed import Bm25Encoder
    from retrieval.extractive import ExtractiveGenerator
    from retrieval.search import Retriever
    from retrieval.service import RagService

    embedder = CountingEmbedder()
    docs = EdgeStore(tmp_path / "docs", "docs")
    retriever = Retriever(embedder, Bm25Encoder(SparseSettings()), docs, RetrievalSettings())
    cache = SemanticCache(EdgeStore(tmp_path / "cache", "cache"), embedder, 0.9, 60)
    service = RagService(retriever, ExtractiveGenerator(), cache, corpus="v1")
    answer = service.ask(Q)
    assert not answer.found  # an empty index
    assert embedder.queries == 1
    cache.close()
    docs.close()


def test_an_entry_maps_to_its_stored_point_and_back() -> None:
    context = RequestContext(tenant="acme", access_groups=("hr", "eng"))
    entry = CachedAnswer.of(Q, context, "v1", _answer(Q, "b.md", "a.md", "a.md"), now=12.5)
    assert entry.scope == "acme|eng,hr"
    assert entry.cited_sources == ("acme/a.md", "acme/b.md")
    point = to_point(entry, QueryVector([0.6, 0.8]))
    assert list(point.dense) == [0.6, 0.8]
    assert (point.chunk.source, point.chunk.tenant) == (SOURCE, "acme")
    assert point.chunk.access_groups == ("hr", "eng")
    assert from_point(point.chunk) == entry


def test_entries_written_before_the_record_type_stay_readable() -> None:
    """The stored layout did not change: a cache filled by an earlier version still hits."""
    stored = {
        "text": "They are uuid5 hashes [1].",
        "found": True,
        "generator": "cheap",
        "citations": [
            {
                "number": 1,
                "source": "ids.md",
                "title": "Ids",
                "section": "",
                "page": None,
                "chunk_id": "c1",
                "quote": "q",
            }
        ],
        "model": "cheap",
        "cost_usd": 0.002,
        "usage": [900, 100],
        "prompt": "grounded_answer.v1",
        "grounded": True,
    }
    chunk = Chunk(
        id="k",
        source=SOURCE,
        text=Q,
        title="",
        section="",
        page=None,
        index=0,
        content_hash="k",
        metadata={
            "scope": "default|",
            "corpus": "v1",
            "created_at": 1_000_000,
            "cited_sources": ["default/ids.md"],
            "answer": json.dumps(stored),
        },
    )
    entry = from_point(chunk)
    assert (entry.created_at, entry.cited_sources) == (1_000_000.0, ("default/ids.md",))
    served = entry.answer("a paraphrase", similarity=0.95, stale=False)
    assert served.question == "a paraphrase"
    assert served.citations == (Citation(1, "ids.md", "Ids", "", None, "c1", "q"),)
    assert served.provenance == Provenance(
        rung=Rung.CACHE,
        model="cheap",
        route="cache hit, similarity 0.950",
        usage=Usage(900, 100),
        saved_usd=0.002,
        prompt="grounded_answer.v1",
        grounded=True,
    )


def test_a_put_with_the_lookups_vector_does_not_embed_again(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    cache = SemanticCache(EdgeStore(tmp_path / "cache", "cache"), embedder, 0.9, 60)
    vector = QueryVector(HashEmbedder(64).embed_query(Q))
    assert cache.lookup(Q, RequestContext(), "v1", vector=vector) is None
    cache.put(Q, RequestContext(), "v1", _answer(Q, "a.md"), vector=vector)
    assert embedder.queries == 0
    assert cache.lookup(Q, RequestContext(), "v1", vector=vector) is not None
    cache.close()


def test_a_request_embeds_its_question_once_whether_it_misses_and_caches_or_hits(
    tmp_path: Path,
) -> None:
    from core.settings import RetrievalSettings, SparseSettings
    from ingest.embed import Bm25Encoder
    from retrieval.search import Retriever
    from retrieval.service import RagService

    embedder = CountingEmbedder()
    docs = EdgeStore(tmp_path / "docs", "docs")
    retriever = Retriever(embedder, Bm25Encoder(SparseSettings()), docs, RetrievalSettings())
    cache = SemanticCache(EdgeStore(tmp_path / "cache", "cache"), embedder, 0.9, 60)
    service = RagService(retriever, GroundedLlm(), cache, corpus="v1")
    first = service.ask(Q)  # miss: lookup, retrieval and put share one embedding
    assert first.provenance is not None
    assert first.provenance.rung is Rung.LLM
    assert (embedder.queries, cache.count()) == (1, 1)
    again = service.ask(Q)
    assert again.provenance is not None
    assert again.provenance.rung is Rung.CACHE
    assert embedder.queries == 2
    cache.close()
    docs.close()
