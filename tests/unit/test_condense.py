"""Follow-ups borrow the words of the question they lean on; standalone questions stay."""

from __future__ import annotations

import pytest

from retrieval.condense import is_follow_up, standalone_query


@pytest.mark.parametrize(
    "question",
    [
        "How is it configured?",
        "And the production one?",
        "What about PostgreSQL?",
        "Why does that matter?",
        "Which of those is faster?",
        "Tell me more",
    ],
)
def test_follow_ups_are_recognised(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    ["Which vector store is the default?", "How are chunk ids made deterministic?"],
)
def test_standalone_questions_are_kept(question: str) -> None:
    assert not is_follow_up(question)
    assert standalone_query(question, ["What is the embedding model?"]) == question


def test_a_follow_up_borrows_the_salient_words_of_the_last_question() -> None:
    query = standalone_query("How is it configured?", ["Which vector store is the default?"])
    assert query.startswith("How is it configured? (")
    assert {"vector", "store", "default"} <= set(query.strip(")").split("(")[1].split())
    assert "which" not in query.split("(")[1]


def test_recent_turns_come_first_and_nothing_repeats() -> None:
    query = standalone_query(
        "And its dimension?",
        ["Which model embeds chunks?", "What does the embedding model weigh?", "Is it int8?"],
    )
    borrowed = query.split("(")[1].strip(")").split()
    assert borrowed[0] == "int8"  # the last turn first
    assert "chunks" not in borrowed  # only the last two turns lend words
    assert len(borrowed) == len(set(borrowed))


def test_no_history_means_no_change() -> None:
    assert standalone_query("How is it configured?", []) == "How is it configured?"
