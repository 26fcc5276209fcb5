"""The semantic cache on the real embedded engine: threshold, scope, TTL, invalidation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.types import Answer, Citation, Provenance, RequestContext, Usage, document_key
from gateway.cache import SemanticCache
from gateway.ledger import SqlLedger
from store.edge import EdgeStore
from tests.fakes import HashEmbedder

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
            rung="llm", model="cheap", route="r", usage=Usage(900, 100), cost_usd=0.002
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
    assert hit.provenance.rung == "cache"
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
    assert stale.provenance.rung == "stale-cache"


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
