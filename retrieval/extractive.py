"""The default generator: a short, grounded, extractive answer that needs no language model.

It quotes the few sentences (or definition items, "term: description") of the top
passages that answer the question, best first, and cites each one, so every word of the
answer is traceable to a passage. Each candidate is scored against the question twice:

- lexically: the share of the question's content terms it contains, each term weighted
  by its rarity among the candidates (IDF, which picks the sentence that differs), with
  its passage's title and section counted at a discount, plus a bonus for the question's
  word pairs it repeats;
- densely: the cosine between the question and the candidate, for the best lexical
  candidates only (one batched call of the embedding model the query path already uses).

The answer stops at a word budget (`RAG_ANSWER__MAX_WORDS`) and drops repeats. It says
"not found" unless the best candidate's support (similarity + half its coverage) clears
`RAG_ANSWER__MIN_SUPPORT`, calibrated on questions whose documents were removed from the
corpus (ADR 0021), and unless every name in the question (a word the embedding model
only knows in scraps, such as "rsync") appears in a retrieved passage. Without an embedder
the decision falls back to coverage alone. The LLM
gateway replaces this generator through the same `Generator` port.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from py_rust_stemmers import SnowballStemmer

from core.ports import Embedder
from core.settings import AnswerSettings
from core.text import options
from core.types import Answer, Citation, Provenance, RequestContext, Rung, ScoredChunk

_PROVENANCE = Provenance(rung=Rung.EXTRACTIVE, model="extractive", route="no LLM configured")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
#: Command-line options and format specifiers ("-i", "--in-place", "%M") are terms too:
#: the word pattern would drop the dash and leave a single letter.
_SPECIFIER = re.compile(r"(?<![\w%])%[a-z]", re.IGNORECASE)


def _options(text: str) -> list[str]:
    """Options ("-i", "--in-place", as the index sees them) and format specifiers ("%M")."""
    return [*options(text), *_SPECIFIER.findall(text)]


#: A sentence ends at . ! ? before a capital, but not after an initial ("Lyndon B.") or a
#: common abbreviation ("Mr.", "e.g."), and at a blank line or before a bullet.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)"
    r"(?<!\bvs\.)(?<!\bNo\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)"
    r"\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=[-*] )"
)
_STOPWORDS = frozenset(
    """
    a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours
    option options flag flags switch mean means meaning purpose
    """.split()  # noqa: SIM905 - a word list reads better as text
)
#: A definition item up to this many words is one candidate; a longer one is split.
_WHOLE_PARAGRAPH_WORDS = 50
#: How many of the best lexical candidates the dense model re-scores.
_DENSE_CANDIDATES = 6
#: The words of a candidate the dense model reads. A batch is padded to its longest text,
#: so one long unit (a table row without a full stop) made every candidate cost as much:
#: with one 400-word unit among 7 texts the call took 11-13x as long (ADR 0021).
_DENSE_WORDS = 48
#: Title and section terms count at this share of a term found in the candidate itself.
_CONTEXT_DISCOUNT = 0.3
_BIGRAM_BONUS = 0.3
_RANK_PENALTY = 0.03
#: A definition of the asked option answers on its own from this coverage ("sed" and "-n"
#: of "what does sed -n do?"; not "-L" alone of "what does curl -L do?" against ssh's -L).
_DEFINITION_COVERAGE = 0.6
#: A further candidate joins the answer only if it scores this share of the best one.
_FOLLOW_SHARE = 0.6
_SAME_TEXT = 0.8  # term overlap (Jaccard) above which two candidates say the same thing


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 1]


#: "term: description", as parsing writes definition list items and options.
_DEFINITION = re.compile(r"^(?:[-+]|[^\s:][^:\n]{0,60}:\s)")


def candidates_of(text: str) -> list[str]:
    """Answer candidates of a passage: sentences, but a definition item ("term:
    description", an option) whole, so its description never loses its term."""
    units: list[str] = []
    for paragraph in re.split(r"\n{2,}", text):
        paragraph = paragraph.strip()
        short = len(paragraph.split()) <= _WHOLE_PARAGRAPH_WORDS
        if short and "\n" not in paragraph and _DEFINITION.match(paragraph):
            units.append(paragraph)
        else:
            units += split_sentences(paragraph)
    return units


class _Stems:
    """Stemmed words of a text (Snowball English, the same family BM25 uses)."""

    def __init__(self) -> None:
        self._stemmer = SnowballStemmer("english")

    def __call__(self, text: str) -> list[str]:
        return list(self._stemmer.stem_words(_WORD.findall(text.lower())))

    def content(self, text: str) -> set[str]:
        """Stems of the words that carry meaning (no stopwords, no single letters), and
        the options named (kept whole: "-i" differs from "-I" and from "i")."""
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1]
        return set(self._stemmer.stem_words(words)) | set(_options(text))

    def all(self, text: str) -> set[str]:
        """Every stem of a text and its options: what a candidate offers to match."""
        return set(self(text)) | set(_options(text))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the "not found" decision weighs, for the best candidate."""

    #: Cosine between the question and the candidate (0.0 without an embedder).
    similarity: float
    #: Share of the question's content terms in the candidate (those only in its passage's
    #: title or section counted at a discount).
    coverage: float
    #: Names in the question (words the embedding model's vocabulary lacks: "rsync",
    #: "nginx") that no passage mentions: the passages are about something else.
    unmatched: tuple[str, ...] = ()
    #: The answer opens with the definition of an option the question names ("-n, --quiet:
    #: ...") and covers most of the question: the model's similarity need not vouch for it.
    defined: bool = False

    @property
    def support(self) -> float:
        return self.similarity + 0.5 * self.coverage


@dataclass(slots=True)
class _Candidate:
    text: str
    rank: int  # of its passage
    position: int  # in its passage
    terms: frozenset[str]
    coverage: float
    score: float
    similarity: float = 0.0
    defines: bool = False  # a definition of an option the question names


class ExtractiveGenerator:
    """Answers with the best-supported sentences of the top passages, each cited."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        settings: AnswerSettings | None = None,
        vocabulary: frozenset[str] | None = None,
    ) -> None:
        self._embedder = embedder
        self._settings = settings or AnswerSettings()
        self._vocabulary = vocabulary
        self._stems = _Stems()

    @property
    def name(self) -> str:
        return "extractive"

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer:
        top = list(passages[: self._settings.max_passages])
        candidates = self._candidates(question, top)
        evidence = self._weigh(question, top, candidates)
        if evidence is None or not self._supported(evidence):
            return Answer.not_found(question, self.name, passages, _PROVENANCE)
        chosen = self._select(candidates)
        numbers: dict[int, int] = {}
        parts = []
        for candidate in chosen:
            number = numbers.setdefault(candidate.rank, len(numbers) + 1)
            parts.append(f"{candidate.text} [{number}]")
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

    def evidence(self, question: str, passages: Sequence[ScoredChunk]) -> Evidence | None:
        """The evidence for the best candidate (None: nothing shares a term with the
        question), for calibration and the eval reports."""
        top = list(passages[: self._settings.max_passages])
        return self._weigh(question, top, self._candidates(question, top))

    def _weigh(
        self, question: str, top: Sequence[ScoredChunk], candidates: list[_Candidate]
    ) -> Evidence | None:
        evidence = self._score_densely(question, candidates)
        if evidence is None or self._vocabulary is None:
            return evidence
        names = {
            word
            for word in _WORD.findall(question.lower())
            if word.isalpha()
            and len(word) > 1
            and word not in _STOPWORDS
            and is_name(word, self._vocabulary)
        }
        if not names:
            return evidence
        text = " ".join(f"{p.chunk.title} {p.chunk.section} {p.chunk.text}" for p in top)
        seen = self._stems.all(text)
        lowered = text.lower()
        words = set(_WORD.findall(lowered))
        unmatched = tuple(
            sorted(
                name
                for name in names
                if self._stems.content(name).isdisjoint(seen)
                # a longer name may sit inside an identifier: "splitter" in "TextSplitter"
                and (len(name) < 7 or name not in lowered)
                # or be misspelt in the question: "Primeier Leage" for "Premier League"
                and not any(_near(name, word) for word in words)
            )
        )
        return dataclasses.replace(evidence, unmatched=unmatched)

    def _supported(self, evidence: Evidence) -> bool:
        if evidence.unmatched:
            return False
        if evidence.defined:
            return True
        if self._embedder is None:
            return evidence.coverage >= self._settings.min_term_overlap
        return evidence.support >= self._settings.min_support

    def _candidates(self, question: str, top: Sequence[ScoredChunk]) -> list[_Candidate]:
        """Every candidate sharing a content term with the question, scored lexically."""
        asked = self._stems(question)
        wanted = self._stems.content(question)
        pairs = set(itertools.pairwise(asked))
        if not wanted or not top:
            return []
        found: list[_Candidate] = []
        units: list[tuple[int, int, str, list[str]]] = []
        for rank, passage in enumerate(top):
            for position, text in enumerate(candidates_of(passage.chunk.text)):
                units.append((rank, position, text, [*self._stems(text), *_options(text)]))
        # Rarer question terms (in fewer candidates) count more: IDF over the candidates.
        frequency = {t: sum(t in stems for *_, stems in units) for t in wanted}
        weight = {t: math.log((len(units) + 1) / (frequency[t] + 0.5)) for t in wanted}
        total = sum(weight.values()) or 1.0
        context = [self._stems.all(f"{p.chunk.title} {p.chunk.section}") & wanted for p in top]
        asked_options = set(_options(question))
        for rank, position, text, stems in units:
            terms = frozenset(stems)
            hits = wanted & terms
            if not hits:
                continue
            beside = context[rank] - hits
            weighted = (
                sum(weight[t] for t in hits) + _CONTEXT_DISCOUNT * sum(weight[t] for t in beside)
            ) / total
            coverage = (len(hits) + _CONTEXT_DISCOUNT * len(beside)) / len(wanted)
            repeated = len(pairs & set(itertools.pairwise(stems))) / max(1, len(pairs))
            score = weighted + _BIGRAM_BONUS * repeated - _RANK_PENALTY * rank
            defines = bool(asked_options) and _defines(text, asked_options)
            if defines:
                score += 1.0  # "-n, --quiet: suppress ..." is what "what does -n do?" asks
            found.append(_Candidate(text, rank, position, terms, coverage, score, defines=defines))
        found.sort(key=lambda c: -c.score)
        return found

    def _score_densely(self, question: str, candidates: list[_Candidate]) -> Evidence | None:
        """Add the dense similarity to the best lexical candidates (one batched model
        call) and re-order them; the evidence is the best candidate's."""
        if not candidates:
            return None
        if self._embedder is None:
            best = candidates[0]
            return Evidence(0.0, best.coverage)
        pool = candidates[:_DENSE_CANDIDATES]
        heads = (" ".join(c.text.split()[:_DENSE_WORDS]) for c in pool)
        vectors = self._embedder.embed_documents([question, *heads])
        asked = _unit(vectors[0])
        for candidate, vector in zip(pool, vectors[1:], strict=True):
            candidate.similarity = sum(a * b for a, b in zip(asked, _unit(vector), strict=True))
            candidate.score += candidate.similarity
        del candidates[len(pool) :]  # only the re-scored ones compete from here on
        candidates.sort(key=lambda c: -c.score)
        first = candidates[0]
        if first.defines and first.coverage >= _DEFINITION_COVERAGE:
            return Evidence(round(first.similarity, 4), round(first.coverage, 4), defined=True)
        best = max(pool, key=lambda c: c.similarity + 0.5 * c.coverage)
        return Evidence(round(best.similarity, 4), round(best.coverage, 4))

    def _select(self, ranked: list[_Candidate]) -> list[_Candidate]:
        """The best candidate, then the next best that fit the word budget, score close to
        it and say something new; returned best first."""
        budget = self._settings.max_words
        chosen = [ranked[0]]
        words = len(ranked[0].text.split())
        for candidate in ranked[1:]:
            if candidate.score < _FOLLOW_SHARE * ranked[0].score:
                break
            size = len(candidate.text.split())
            if words + size > budget or any(_same(candidate, c) for c in chosen):
                continue
            chosen.append(candidate)
            words += size
        return chosen


def word_pieces(word: str, vocabulary: frozenset[str]) -> int:
    """How many WordPiece pieces the model splits `word` into (greedy longest match, as
    BERT tokenizers do); a letter the vocabulary lacks counts as a piece."""
    pieces, start = 0, 0
    while start < len(word):
        end = len(word)
        while end > start and (word[start:end] if start == 0 else f"##{word[start:end]}") not in (
            vocabulary
        ):
            end -= 1
        start = end if end > start else start + 1
        pieces += 1
    return pieces


def is_name(word: str, vocabulary: frozenset[str]) -> bool:
    """A name the model only knows in scraps ("rsync" = rs + yn + c, "xz" = x + z), not a
    word it lacks but can spell from parts ("restated" = rest + ated): three
    letters a piece at most. Names must appear in a passage; words need not."""
    if word in vocabulary:
        return False
    return len(word) / word_pieces(word, vocabulary) <= 3.0


def _near(name: str, word: str) -> bool:
    """`word` is `name` with a typo: edit distance 1 from 6 letters, 2 from 9. A short
    name must match exactly: "rsync" is one edit from "async", "zlib" from "glib"."""
    if len(name) < 6:
        return False
    limit = 1 if len(name) < 9 else 2
    if abs(len(name) - len(word)) > limit:
        return False
    previous = list(range(len(word) + 1))
    for i, a in enumerate(name, 1):
        current = [i]
        for j, b in enumerate(word, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def _defines(text: str, options: set[str]) -> bool:
    """A definition item whose term names one of `options` ("-n, --quiet: ...")."""
    term, separator, _ = text.partition(": ")
    return bool(separator) and len(term) <= 80 and not options.isdisjoint(_options(term))


def _same(a: _Candidate, b: _Candidate) -> bool:
    union = a.terms | b.terms
    return bool(union) and len(a.terms & b.terms) / len(union) >= _SAME_TEXT


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
