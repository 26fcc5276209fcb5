"""The groundedness guard: sentences their cited passages do not support are flagged or
withheld; supported answers and "not found" pass untouched."""

from __future__ import annotations

import pytest

from core.types import NOT_FOUND, Answer, Chunk, Citation, Provenance, Rung, ScoredChunk
from governance.grounding import GroundednessGuard, answer_support, sentences

PASSAGE = (
    "The embedded engine is Qdrant Edge. It stores 384-dimension vectors and serves "
    "hybrid queries with fusion in one process."
)
OTHER = "The garden gate code is changed every spring by the caretaker."


def _answer(text: str, *passages: str) -> Answer:
    chunks = [
        Chunk(f"id{i}", f"doc{i}.md", p, "", "", None, 0, "h") for i, p in enumerate(passages)
    ]
    return Answer(
        "q",
        text,
        tuple(Citation.of(i + 1, c) for i, c in enumerate(chunks)),
        found=True,
        generator="llm",
        passages=tuple(ScoredChunk(c, 1.0) for c in chunks),
        provenance=Provenance(Rung.LLM, "m", "default", grounded=True),
    )


def test_markers_after_the_full_stop_belong_to_the_sentence_before() -> None:
    assert sentences("It is Qdrant Edge. [1] It stores vectors [2]. Then more.") == [
        "It is Qdrant Edge. [1]",
        "It stores vectors [2].",
        "Then more.",
    ]


def test_a_supported_answer_passes_untouched() -> None:
    answer = _answer(
        "The embedded engine is Qdrant Edge [1]. It serves hybrid queries [1].", PASSAGE
    )
    assert GroundednessGuard("withhold", 0.5).apply(answer) is answer
    assert [s.score for s in answer_support(answer)] == [1.0, 1.0]


def test_a_claim_its_passage_does_not_make_is_flagged() -> None:
    answer = _answer(
        "The engine is Qdrant Edge [1]. The caretaker rotates the encryption keys monthly [2].",
        PASSAGE,
        OTHER,
    )
    flagged = GroundednessGuard("flag", 0.5).apply(answer)
    assert flagged.text == answer.text
    assert flagged.provenance is not None
    assert flagged.provenance.grounded is False
    assert flagged.provenance.unsupported_sentences == (
        "The caretaker rotates the encryption keys monthly [2].",
    )


def test_a_changed_number_is_unsupported_even_when_every_word_matches() -> None:
    answer = _answer("It stores 768-dimension vectors [1].", PASSAGE)
    (support,) = answer_support(answer)
    assert support.numbers_ok is False
    assert GroundednessGuard("flag", 0.5).apply(answer).provenance.grounded is False  # type: ignore[union-attr]


def test_withhold_answers_not_found_with_the_same_passages() -> None:
    answer = _answer("The engine was written in 1987 by volunteers [1].", PASSAGE)
    withheld = GroundednessGuard("withhold", 0.5).apply(answer)
    assert withheld.found is False
    assert withheld.text == NOT_FOUND
    assert withheld.passages == answer.passages
    assert withheld.provenance is not None
    assert "withheld" in withheld.provenance.route


@pytest.mark.parametrize("policy", ["off", "flag", "withhold"])
def test_not_found_and_the_off_policy_are_left_alone(policy: str) -> None:
    nothing = Answer.not_found("q", "llm")
    assert GroundednessGuard(policy, 0.5).apply(nothing) is nothing  # type: ignore[arg-type]
    made_up = _answer("Volunteers wrote it in 1987 [1].", PASSAGE)
    assert GroundednessGuard("off", 0.5).apply(made_up) is made_up
