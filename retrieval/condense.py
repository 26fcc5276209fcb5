"""Turn the last question of a conversation into one that stands alone, before retrieval.

Retrieval sees one query, so "and how is it configured?" after "Which vector store is the
default?" would search for nothing in particular. A follow-up (it leans on a pronoun or a
demonstrative, opens with "and" / "what about", or says too little) is given the salient
words of the earlier user turns it leans on; a question that already stands alone is kept
as it is. Rules, not a model: offline, deterministic, microseconds, and the standalone query
is returned to the caller so the choice is visible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that make a question lean on an earlier one.
_ANAPHORA = _words(
    "it its it's they them their theirs this that these those there he she his her one ones "
    "former latter such same"
)
_OPENERS = ("and ", "but ", "also ", "what about ", "how about ", "and what", "so ")
#: Words that carry no topic (the anaphora included): never borrowed from an earlier turn.
_STOP = _ANAPHORA | _words(
    """a an the of to in on for by with from at as is are was were be been being do does did
    how what which who whom whose why when where can could should would will shall may might
    must i you we me my your our us and or but not no so if then than too very just about
    into over under more most less least much many some any each every all both either
    neither own other another also here please tell explain describe show give list name
    doesn"""
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.'-]*")
#: A question with fewer content words than this says too little on its own.
_MIN_CONTENT_WORDS = 3
#: How many earlier user turns may lend words, most recent first.
_LOOKBACK = 2


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w.strip(".'-") not in _STOP]


def is_follow_up(question: str) -> bool:
    """Does the question lean on an earlier turn?"""
    lowered = question.lower().strip()
    words = {w.strip(".'-") for w in _WORD.findall(lowered)}
    return (
        bool(words & _ANAPHORA)
        or lowered.startswith(_OPENERS)
        or len(_content_words(question)) < _MIN_CONTENT_WORDS
    )


def standalone_query(question: str, earlier_questions: Sequence[str]) -> str:
    """`question`, with the salient words of the earlier user turns it leans on appended
    when it is a follow-up (most recent turn first, no repeats); unchanged otherwise."""
    if not earlier_questions or not is_follow_up(question):
        return question
    have = set(_content_words(question))
    borrowed: list[str] = []
    for earlier in reversed(earlier_questions[-_LOOKBACK:]):
        for word in _content_words(earlier):
            if word not in have:
                have.add(word)
                borrowed.append(word)
    return f"{question} ({' '.join(borrowed)})" if borrowed else question
