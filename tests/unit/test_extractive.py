from __future__ import annotations

import re
from collections.abc import Sequence

from core.settings import AnswerSettings
from core.types import NOT_FOUND, Chunk, Rung, ScoredChunk
from retrieval.extractive import (
    ExtractiveGenerator,
    candidates_of,
    is_name,
    split_sentences,
    word_pieces,
)
from tests.fakes import HashEmbedder


class TopicEmbedder:
    """Each text points along the axis of the first topic word it names (an unknown text
    is orthogonal to all): similarity 1 within a topic, 0 across."""

    topics = ("store", "chunk", "banana", "sed")
    name, dim = "topics", 5

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        lowered = text.lower()
        axis = next((i for i, t in enumerate(self.topics) if t in lowered), self.dim - 1)
        vector[axis] = 1.0
        return vector


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
    answer = ExtractiveGenerator().generate("How are chunk ids hashed?", passages)
    numbers = {c.number for c in answer.citations}
    markers = {int(m) for m in __import__("re").findall(r"\[(\d+)\]", answer.text)}
    assert markers == numbers
    assert numbers


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


def _words(answer_text: str) -> int:
    return len(re.sub(r"\s*\[\d+\]", "", answer_text).split())


def test_the_best_sentence_comes_first_even_from_a_later_passage() -> None:
    passages = [
        _hit("Stores are many. Some store data in memory for speed.", "a.md"),
        _hit("Intro text here. The default store is Qdrant Edge, embedded.", "b.md"),
    ]
    answer = ExtractiveGenerator().generate("Which store is the default store?", passages)
    assert answer.text.startswith("The default store is Qdrant Edge, embedded. [1]")
    assert answer.citations[0].source == "b.md"


def test_the_answer_stops_at_its_word_budget_and_never_repeats() -> None:
    sentence = "Chunk ids are hashes of the chunk text and the source."
    passages = [
        _hit(" ".join([sentence, f"Chunk sizes vary {i} ways, with chunk limits."]), f"s{i}.md")
        for i in range(4)
    ]
    settings = AnswerSettings(max_words=25)
    answer = ExtractiveGenerator(settings=settings).generate("How are chunk ids made?", passages)
    assert answer.found
    assert _words(answer.text) <= 25
    assert answer.text.count(sentence) == 1


def test_a_long_best_sentence_is_given_whole_even_over_budget() -> None:
    long = "The default store " + "really " * 30 + "is Qdrant Edge."
    answer = ExtractiveGenerator(settings=AnswerSettings(max_words=10)).generate(
        "Which store is the default?", [_hit(long, "a.md")]
    )
    assert answer.text == f"{long} [1]"


def test_a_definition_item_is_quoted_with_its_description() -> None:
    text = (
        "-n, --quiet: suppress automatic printing of pattern space\n\n"
        "-i[SUFFIX], --in-place[=SUFFIX]: edit files in place (makes backup if SUFFIX "
        "supplied)\n\n-s, --separate: consider files as separate"
    )
    assert len(candidates_of(text)) == 3
    answer = ExtractiveGenerator().generate(
        "What does the --in-place option do?", [_hit(text, "sed.1.txt")]
    )
    assert answer.text.startswith("-i[SUFFIX], --in-place[=SUFFIX]: edit files in place")


def test_support_below_the_bar_is_not_found_and_above_it_is_answered() -> None:
    passages = [_hit("Bananas are yellow; a store sells bananas by weight.", "fruit.md")]
    question = "What colour are ripe sed scripts?"  # shares no topic with the passage
    strict = ExtractiveGenerator(TopicEmbedder(), AnswerSettings(min_support=0.6))
    assert not strict.generate(question, passages).found
    lenient = ExtractiveGenerator(TopicEmbedder(), AnswerSettings(min_support=0.0))
    assert not lenient.generate(question, passages).found  # no shared term at all
    evidence = strict.evidence("Which store sells bananas?", passages)
    assert evidence is not None
    assert evidence.similarity == 1.0  # same topic axis
    assert strict.generate("Which store sells bananas?", passages).found


def test_any_embedder_gives_deterministic_answers() -> None:
    passages = [_hit("The default store is Qdrant Edge. It runs in process.", "store.md")]
    generator = ExtractiveGenerator(HashEmbedder(16), AnswerSettings(min_support=0.0))
    first = generator.generate("Which store is the default?", passages)
    assert first == generator.generate("Which store is the default?", passages)


VOCABULARY = frozenset(
    ["rest", "##ated", "center", "##piece", "x", "##z", "rs", "##yn", "##c", "sed", "packer"]
)


def test_names_are_words_the_model_knows_only_in_scraps() -> None:
    assert word_pieces("restated", VOCABULARY) == 2
    assert not is_name("restated", VOCABULARY)  # an English word spelt from parts
    assert not is_name("centerpiece", VOCABULARY)
    assert is_name("rsync", VOCABULARY)  # rs + yn + c: a name
    assert is_name("xz", VOCABULARY)
    assert not is_name("sed", VOCABULARY)  # a whole word of the vocabulary


def test_a_name_no_passage_mentions_means_not_found_but_a_typo_does_not() -> None:
    passages = [_hit("The default block size of the packer is 900k. Rsync is fast.", "p.md")]
    generator = ExtractiveGenerator(
        settings=AnswerSettings(min_term_overlap=0.0), vocabulary=VOCABULARY
    )
    asked = generator.evidence("What is the default block size of xz?", passages)
    assert asked is not None
    assert asked.unmatched == ("xz",)
    assert not generator.generate("What is the default block size of xz?", passages).found
    assert generator.generate("What is the default block size of the packer?", passages).found
    typo = generator.evidence("Is rsync fast?", passages)
    assert typo is not None
    assert typo.unmatched == ()


def test_initials_and_abbreviations_do_not_end_a_sentence() -> None:
    text = "Kennedy wrote to Vice President Lyndon B. Johnson. Mr. Webb answered. It worked."
    assert split_sentences(text) == [
        "Kennedy wrote to Vice President Lyndon B. Johnson.",
        "Mr. Webb answered.",
        "It worked.",
    ]


def test_a_definition_of_the_asked_option_answers_even_when_similarity_is_low() -> None:
    text = "-n, --quiet: suppress automatic printing of pattern space\n\n-z: NUL lines"
    passages = [_hit(text, "sed.1.txt", section="sed - stream editor")]
    generator = ExtractiveGenerator(TopicEmbedder(), AnswerSettings(min_support=0.9))
    answer = generator.generate("What does sed -n do?", passages)  # similarity 1 vs 0: low
    assert answer.text.startswith("-n, --quiet: suppress automatic printing")
    # The same option of another tool (sed's -L asked, only ssh's -L here) is not enough.
    ssh = [_hit("-L port: forward a local port\n\n-J host: jump host", "ssh.1.txt")]
    assert not generator.generate("What does the -L option of sed do?", ssh).found
