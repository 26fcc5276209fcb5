"""The answer cache on the real embedded engine: exact repeats and by meaning; threshold,
scope, TTL, invalidation."""

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
from gateway.cache import (
    SOURCE,
    CachedAnswer,
    SemanticCache,
    entry_id,
    entry_source,
    from_point,
    normal_question,
    scope_of,
    to_point,
)
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
    assert (point.chunk.source, point.chunk.tenant) == (entry_source(entry.id), "acme")
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


def test_a_request_embeds_its_question_once_on_a_miss_or_a_hit_by_meaning_never_on_a_repeat(
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
    again = service.ask(f"  {Q.upper()}?")  # an exact repeat: answered before embedding
    assert again.provenance is not None
    assert again.provenance.route == "cache hit, exact repeat"
    assert embedder.queries == 1
    close = service.ask(f"{Q} please")  # HashEmbedder: close enough by meaning, not a repeat
    assert close.provenance is not None
    assert close.provenance.rung is Rung.CACHE
    assert close.provenance.route.startswith("cache hit, similarity")
    assert embedder.queries == 2
    cache.close()
    docs.close()


# The exact-repeat tier.


def test_a_repeated_question_hits_without_an_embedding(parts: Parts) -> None:
    cache, _, ledger = parts
    context = RequestContext(tenant="acme")
    cache.put(Q, context, "v1", _answer(Q, "ids.md"))
    hit = cache.repeat("  How are chunk IDs made in the ingest   pipeline?", context, "v1")
    assert hit is not None
    assert hit.provenance is not None
    assert (hit.provenance.rung, hit.provenance.route) == (Rung.CACHE, "cache hit, exact repeat")
    assert ledger.report()[0].cache_hits == 1
    assert cache.repeat("how are chunk ids made in the pipeline", context, "v1") is None


@pytest.mark.parametrize(
    ("asked", "same"),
    [
        ("How are chunk IDs made?", True),
        ("ｈｏｗ are chunk ids made ? ", True),  # full-width letters: NFKC
        ("How are chunk ids made!", False),
        ("How are chunk-ids made", False),
        ("How are chunk ids not made", False),
    ],
)
def test_normalisation_keeps_what_changes_the_question(asked: str, same: bool) -> None:
    assert (normal_question(asked) == normal_question("how are chunk ids made")) is same
    assert normal_question("What is C++?") != normal_question("What is C?")


@pytest.mark.parametrize(
    "other",
    [
        RequestContext(tenant="globex"),
        RequestContext(tenant="globex", access_groups=("eng",)),
        RequestContext(tenant="acme"),
        RequestContext(tenant="acme", access_groups=("hr",)),
        RequestContext(tenant="acme", access_groups=("eng", "hr")),
    ],
)
def test_an_exact_repeat_never_crosses_tenants_or_access_groups(
    parts: Parts, other: RequestContext
) -> None:
    """Attack: the very same question from another tenant or another set of groups."""
    cache, _, _ = parts
    owner = RequestContext(tenant="acme", access_groups=("eng",))
    cache.put(Q, owner, "v1", _answer(Q, "secret.md"))
    assert cache.repeat(Q, other, "v1") is None
    assert cache.repeat(Q, owner, "v2") is None  # another corpus version
    assert cache.repeat(Q, owner, "v1") is not None


def test_a_forged_point_under_another_scopes_key_is_not_served(tmp_path: Path) -> None:
    """Attack: a point stored under globex's key for Q but holding acme's entry (a hash
    collision, or a write that bypassed `put`) never reaches globex, nor acme."""
    store = EdgeStore(tmp_path / "store", "cache")
    cache = SemanticCache(store, HashEmbedder(64), threshold=0.9, ttl_s=60)
    acme, globex = RequestContext(tenant="acme"), RequestContext(tenant="globex")
    entry = CachedAnswer.of(Q, acme, "v1", _answer(Q, "secret.md"), now=1e12)
    point = to_point(entry, QueryVector(HashEmbedder(64).embed_query(Q)))
    key = entry_id(scope_of(globex), "v1", Q)
    forged = point.chunk.__class__(
        **{**{f: getattr(point.chunk, f) for f in point.chunk.__dataclass_fields__}},
    )
    object.__setattr__(forged, "source", entry_source(key))
    object.__setattr__(forged, "metadata", {**forged.metadata, "scope": scope_of(globex)})
    store.upsert([point.__class__(forged, point.dense, point.sparse)])
    assert cache.repeat(Q, globex, "v1") is None  # the entry's tenant is acme: refused
    assert cache.repeat(Q, acme, "v1") is None  # acme's key names no point
    cache.close()


def test_an_expired_repeat_misses_but_serves_as_the_stale_last_rung(parts: Parts) -> None:
    cache, clock, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "a.md"))
    clock.now += 61
    assert cache.repeat(Q, RequestContext(), "v1") is None
    stale = cache.repeat(Q, RequestContext(), "v1", allow_stale=True)
    assert stale is not None
    assert stale.provenance is not None
    assert stale.provenance.rung is Rung.STALE_CACHE


def test_invalidation_and_retention_reach_the_exact_tier(parts: Parts) -> None:
    from datetime import UTC, datetime

    cache, clock, _ = parts
    cache.put(Q, RequestContext(), "v1", _answer(Q, "ids.md"))
    cache.invalidate([document_key("default", "ids.md")])
    assert cache.repeat(Q, RequestContext(), "v1") is None
    cache.put(Q, RequestContext(), "v1", _answer(Q, "ids.md"))
    assert cache.count() == 1
    assert cache.purge_before(datetime.fromtimestamp(clock.now + 1, UTC)) == 1
    assert cache.repeat(Q, RequestContext(), "v1") is None


def test_optimizing_indexes_the_entries_and_they_still_hit(parts: Parts) -> None:
    cache, _, _ = parts
    for i in range(50):
        cache.put(f"{Q} number {i}", RequestContext(), "v1", _answer(Q, "a.md"))
    cache.optimize()  # Qdrant Edge builds HNSW on request
    assert cache.repeat(f"{Q} number 7", RequestContext(), "v1") is not None
    assert cache.lookup(f"{Q} number 7", RequestContext(), "v1") is not None


def test_a_store_that_indexes_on_its_own_is_not_asked_to() -> None:
    from tests.fakes import MemoryStore

    assert SemanticCache(MemoryStore(), HashEmbedder(64), 0.9, 60).optimize() is False
