"""The groundedness guard: is each sentence of an answer supported by the passages it cites?

The citation check (`gateway.prompting.check_citations`) says whether a sentence cites a
passage that was given; this says whether the passage backs what the sentence claims. The
support of a sentence is lexical: the share of its content words (lower-cased, crudely
stemmed, stopwords and citation markers out) found in the passages it cites, with one hard
rule: every number in the sentence must appear in them (a changed figure is the most
common hallucination, and one word among ten would not move an overlap score). A sentence
that cites nothing is judged against every passage the answer cites.

Why overlap and not entailment: no NLI model ships offline on PyPI, and on the golden set
the overlap rule separated real answers from answers paired with the wrong passages about
as well as the embedding cosine did, at a fraction of a millisecond (ADR 0022 has the
figures). Its blind spot is a paraphrase that negates ("is not" vs "is"): the score sees
the same words.

Policy (RAG_GOVERNANCE__GROUNDEDNESS): `flag` marks the answer (`grounded: false`, the
unsupported sentences listed in its provenance; it is not cached), `withhold` replaces it
by "not found" with the same passages, so "I don't know" stays a first-class answer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from core.types import Answer, Provenance, Rung

_CITATION = re.compile(r"\[(\d+)\]")
#: A sentence ends at . ! or ? followed by a capital, or after its citation markers
#: ("... fast. [1] Next ..."): the markers belong to the sentence before them.
_SENTENCE = re.compile(r"(?:(?<=[.!?])|(?<=\]))\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_NUMBER = re.compile(r"^[0-9]+(?:[.,][0-9]+)*$")
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    his how i if in into is it its may might more most must no not of on or our over she
    should so such than that the their them then there these they this those through to too
    under up was we were what when where which while who whom why will with would you your
    also each any both only other same very just about after before between during
    because""".split()  # noqa: SIM905 - a word list reads best as words
)
_SUFFIXES = ("ingly", "edly", "ing", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    if _NUMBER.match(word):
        return word.replace(",", "")
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    words = _WORD.findall(_CITATION.sub(" ", text).lower())
    return {_stem(w) for w in words if w not in _STOPWORDS and (len(w) > 2 or w.isdigit())}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    sentence: str
    score: float  # share of content words found in the cited passages
    numbers_ok: bool  # every number in the sentence appears in them

    def supported(self, min_support: float) -> bool:
        return self.numbers_ok and self.score >= min_support


def sentence_support(sentence: str, passages: Iterable[str]) -> SentenceSupport:
    return _support(sentence, set().union(*(content_words(p) for p in passages)))


def _support(sentence: str, found: set[str]) -> SentenceSupport:
    """`sentence` against the content words of the passages it cites."""
    words = content_words(sentence)
    if not words:  # "Yes [1]." claims nothing checkable by words
        return SentenceSupport(sentence, 1.0, True)
    numbers = {w for w in words if _NUMBER.match(w)}
    return SentenceSupport(sentence, len(words & found) / len(words), numbers <= found)


def answer_support(answer: Answer) -> list[SentenceSupport]:
    """Each sentence's support by the passages it cites (full chunk texts), each passage's
    words read once; a sentence citing nothing is judged against all the cited ones."""
    texts = {p.chunk.id: p.chunk.text for p in answer.passages}
    words = {c.number: content_words(texts.get(c.chunk_id, c.quote)) for c in answer.citations}
    everything = set().union(*words.values())
    supports = []
    for sentence in sentences(answer.text):
        cited = [words[int(n)] for n in _CITATION.findall(sentence) if int(n) in words]
        supports.append(_support(sentence, set().union(*cited) if cited else everything))
    return supports


class GroundednessGuard:
    """Applies the policy to an answer: flag or withhold the unsupported ones."""

    def __init__(self, policy: Literal["off", "flag", "withhold"], min_support: float) -> None:
        self.policy = policy
        self.min_support = min_support

    def apply(self, answer: Answer) -> Answer:
        if self.policy == "off" or not answer.found or not answer.citations:
            return answer
        unsupported = tuple(
            s.sentence for s in answer_support(answer) if not s.supported(self.min_support)
        )
        if not unsupported:
            return answer
        provenance = answer.provenance or Provenance(Rung.EXTRACTIVE, answer.generator, "")
        flagged = dataclasses.replace(provenance, grounded=False, unsupported_sentences=unsupported)
        if self.policy == "flag":
            return dataclasses.replace(answer, provenance=flagged)
        withheld = dataclasses.replace(
            flagged, route=f"{flagged.route}; withheld: {len(unsupported)} unsupported sentence(s)"
        )
        return Answer.not_found(answer.question, answer.generator, answer.passages, withheld)
