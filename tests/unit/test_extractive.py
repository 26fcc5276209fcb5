from __future__ import annotations

from core.types import NOT_FOUND, Chunk, Rung, ScoredChunk
from retrieval.extractive import ExtractiveGenerator, split_sentences


def _hit(text: str, source: str, score: float = 1.0, section: str = "") -> ScoredChunk:
    chunk = Chunk(
        id=f"id-{source}",
        source=source,
        text=text,
        title=source.upper(),
        section=section,
        page=3,
        index=0,
        content_hash="h",
    )
    return ScoredChunk(chunk, score)


def test_answer_quotes_matching_sentences_and_cites_their_passages() -> None:
    passages = [
        _hit("The default store is Qdrant Edge. It runs in process.", "store.md"),
        _hit("Weather was sunny. Qdrant servers replicate shards across nodes.", "server.md"),
    ]
    answer = ExtractiveGenerator().generate("Which store is the default?", passages)
    assert answer.found
    assert "The default store is Qdrant Edge. [1]" in answer.text
    first = answer.citations[0]
    assert (first.number, first.source, first.page, first.chunk_id) == (
        1,
        "store.md",
        3,
        "id-store.md",
    )
    assert "sunny" not in answer.text


def test_every_marker_points_to_a_citation() -> None:
    passages = [_hit(f"Chunk ids use hashes number {i}.", f"s{i}.md") for i in range(3)]
    answer = ExtractiveGenerator(max_sentences=3).generate("How are chunk ids hashed?", passages)
    numbers = {c.number for c in answer.citations}
    markers = {int(m) for m in __import__("re").findall(r"\[(\d+)\]", answer.text)}
    assert markers == numbers == {1, 2, 3}


def test_not_found_when_nothing_relevant_was_retrieved() -> None:
    passages = [_hit("Bananas are yellow and rich in potassium.", "fruit.md")]
    answer = ExtractiveGenerator().generate("How does Kubernetes autoscaling work?", passages)
    assert not answer.found
    assert answer.text == NOT_FOUND
    assert answer.citations == ()
    assert answer.passages == tuple(passages)  # what was looked at, for the eval reports
    assert answer.provenance is not None
    assert answer.provenance.rung is Rung.EXTRACTIVE


def test_not_found_without_passages() -> None:
    assert not ExtractiveGenerator().generate("anything at all?", []).found


def test_sentence_splitter_keeps_abbreviation_free_sentences_apart() -> None:
    assert split_sentences("One is here. Two follows! Three?\n\nFour") == [
        "One is here.",
        "Two follows!",
        "Three?",
        "Four",
    ]
