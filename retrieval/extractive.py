"""The default generator: a grounded, extractive answer that needs no language model.

It quotes the retrieved sentences that best cover the question's terms and cites each
one, so every word of the answer is traceable to a passage. When the best passage
shares too little with the question it answers "not found" instead of guessing. The
LLM gateway replaces this through the same `Generator` port.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

from py_rust_stemmers import SnowballStemmer

from core.types import Answer, Citation, Provenance, RequestContext, Rung, ScoredChunk

_PROVENANCE = Provenance(rung=Rung.EXTRACTIVE, model="extractive", route="no LLM configured")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=[-*] )")
_STOPWORDS = frozenset(
    """
    a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours
    """.split()  # noqa: SIM905 - a word list reads better as text
)


class _Terms:
    """Content terms of a text, stemmed (Snowball English, the same family BM25 uses)."""

    def __init__(self) -> None:
        self._stemmer = SnowballStemmer("english")

    def __call__(self, text: str) -> set[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1]
        return set(self._stemmer.stem_words(words))


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 1]


class ExtractiveGenerator:
    """Answers with the best-matching sentences of the top passages, each cited."""

    def __init__(
        self, max_passages: int = 3, max_sentences: int = 4, min_term_overlap: float = 0.34
    ) -> None:
        self._max_passages = max_passages
        self._max_sentences = max_sentences
        self._min_overlap = min_term_overlap
        self._terms = _Terms()

    @property
    def name(self) -> str:
        return "extractive"

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer:
        wanted = self._terms(question)
        top = list(passages[: self._max_passages])
        # Each passage is stemmed once per answer; sentences are stemmed below, once each.
        passage_terms = [self._terms(p.chunk.text) for p in top]
        coverage = [
            len(wanted & (terms | self._terms(p.chunk.section)))
            for terms, p in zip(passage_terms, top, strict=True)
        ]
        if not wanted or not top or max(coverage) / len(wanted) < self._min_overlap:
            return Answer.not_found(question, self.name, passages, _PROVENANCE)
        # Rarer question terms (present in fewer passages) count more, as in IDF.
        document_frequency = {
            term: sum(term in terms for terms in passage_terms) for term in wanted
        }
        weight = {
            t: math.log(1 + len(top) / (1 + df)) + 0.1 for t, df in document_frequency.items()
        }
        scored: list[tuple[float, int, int, str]] = []
        for rank, passage in enumerate(top):
            if coverage[rank] == 0:
                continue
            for position, sentence in enumerate(split_sentences(passage.chunk.text)):
                hits = self._terms(sentence) & wanted
                if hits:
                    score = sum(weight[t] for t in hits) / (1 + 0.15 * rank)
                    scored.append((score, rank, position, sentence))
        if not scored:
            return Answer.not_found(question, self.name, passages, _PROVENANCE)
        chosen = sorted(scored, key=lambda s: -s[0])[: self._max_sentences]
        chosen.sort(key=lambda s: (s[1], s[2]))  # read in passage order, as written
        numbers: dict[int, int] = {}
        parts = []
        for _, rank, _, sentence in chosen:
            number = numbers.setdefault(rank, len(numbers) + 1)
            parts.append(f"{sentence} [{number}]")
        citations = tuple(Citation.of(number, top[rank].chunk) for rank, number in numbers.items())
        return Answer(
            question,
            " ".join(parts),
            citations,
            found=True,
            generator=self.name,
            passages=tuple(passages),
            provenance=dataclasses.replace(_PROVENANCE, grounded=True),  # every sentence cited
        )
