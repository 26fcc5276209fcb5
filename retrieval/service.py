"""The query path end to end: cache -> retrieve -> (rerank) -> generate -> cite.

Surfaces (API, CLI) call this. The answer cache sits first, so a hit skips retrieval and
the LLM; it is also the last rung of the degradation ladder: when retrieval itself fails,
a stale cached answer (labelled `stale-cache`) is better than an error. With a cache, the
question is embedded once (`QueryVector`): the lookup, retrieval on a miss, and the `put`
of the new answer all use that one vector.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator

from core.errors import InvalidFilterError, StoreError
from core.ports import AnswerCache, Generator, StreamingGenerator
from core.telemetry import (
    CacheResult,
    Degradation,
    Stage,
    count_answer,
    count_cache,
    count_degraded,
    note,
    open_stage,
    stage,
)
from core.types import (
    Answer,
    AnswerEvent,
    Below,
    Filters,
    QueryVector,
    RequestContext,
    Retrieval,
    Rung,
    ScoredChunk,
    SearchMode,
)
from retrieval.search import Retriever, elapsed_ms, normalize_query
from store.schema import FILTERABLE_FIELDS

log = logging.getLogger(__name__)

_INT64 = 2**63 - 1
_MAX_FILTER_TEXT = 1024
_MAX_FILTER_ITEMS = 100


def check_filters(filters: Filters | None) -> Filters | None:
    """A caller's filters, if they only narrow: named fields from `FILTERABLE_FIELDS`,
    values the engine can compare. Tenant, groups and internal fields are reserved (the
    scope comes from the principal), so naming them is an `InvalidFilterError`."""
    if not filters:
        return None
    for key, value in filters.items():
        if key not in FILTERABLE_FIELDS:
            raise InvalidFilterError(
                f"cannot filter on {key[:80]!r}: filters may name "
                + ", ".join(sorted(FILTERABLE_FIELDS))
            )
        if isinstance(value, Below):  # internal (retention); a request cannot send one
            raise InvalidFilterError(f"filter {key!r}: ranges are not supported")
        items = [value] if isinstance(value, (str, int, bool)) else list(value)
        if not items or len(items) > _MAX_FILTER_ITEMS:
            raise InvalidFilterError(f"filter {key!r}: give 1 to {_MAX_FILTER_ITEMS} values")
        for item in items:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > _INT64:
                raise InvalidFilterError(f"filter {key!r}: {str(item)[:40]} is out of range")
            if isinstance(item, str) and len(item) > _MAX_FILTER_TEXT:
                raise InvalidFilterError(f"filter {key!r}: values are at most 1024 characters")
    return filters


class RagService:
    """What the API and the CLI call: search, or answer with citations."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        cache: AnswerCache | None = None,
        corpus: str = "",
        guard: Callable[[Answer], Answer] | None = None,
        screen: Callable[[list[ScoredChunk]], list[ScoredChunk]] | None = None,
    ) -> None:
        self._retriever = retriever
        self._generator = generator
        self._cache = cache
        self._corpus = corpus
        # The groundedness guard (governance.grounding): flags or withholds an answer
        # its passages do not support, before it is cached or returned.
        self._guard = guard or (lambda answer: answer)
        # Prompt-injection screening of retrieved passages (governance.screening): flagged
        # ones are marked for the prompt, or quarantined (never returned, never prompted).
        self._screen = screen or (lambda hits: hits)

    def search(
        self,
        query: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
        context: RequestContext | None = None,
    ) -> list[ScoredChunk]:
        """Ranked chunks the caller may read: its tenant and groups, in the engine's filter.
        No context is the default tenant without groups (the local operator's scope)."""
        scope = (context or RequestContext()).scope
        hits = self._screen(
            self._retriever.search(
                query, top_k=top_k, filters=check_filters(filters), mode=mode, scope=scope
            )
        )
        note(documents=(hit.chunk.source for hit in hits), text=query)
        return hits

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        context: RequestContext | None = None,
    ) -> Answer:
        context = context or RequestContext()
        filters = check_filters(filters)
        cleaned = normalize_query(question)
        start = time.perf_counter()
        cached, vector = self._cached(cleaned, context)
        if cached is not None:
            _count(cached)
            return dataclasses.replace(cached, timings_ms={"cache": elapsed_ms(start)})
        retrieval = self._retrieve(cleaned, top_k, filters, context, vector)
        if isinstance(retrieval, Answer):
            _count(retrieval)
            return retrieval
        start = time.perf_counter()
        with stage(Stage.GENERATE, **{"rag.passages": len(retrieval.hits)}):
            answer = self._guard(self._generator.generate(cleaned, retrieval.hits, context))
        self._remember(cleaned, context, answer, vector)
        timings = {**retrieval.timings_ms, "generate": elapsed_ms(start)}
        _count(answer)
        return dataclasses.replace(answer, timings_ms=timings)

    def ask_stream(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        context: RequestContext | None = None,
    ) -> Iterator[AnswerEvent]:
        """Like `ask`, as events: tokens while the model writes, then the checked answer."""
        context = context or RequestContext()
        filters = check_filters(filters)
        cleaned = normalize_query(question)
        cached, vector = self._cached(cleaned, context)
        retrieval = (
            self._retrieve(cleaned, top_k, filters, context, vector) if cached is None else cached
        )
        if isinstance(retrieval, Answer):
            _count(retrieval)
            yield AnswerEvent("token", retrieval.text)
            yield AnswerEvent("answer", answer=retrieval)
            return
        if not isinstance(self._generator, StreamingGenerator):
            with stage(Stage.GENERATE, **{"rag.passages": len(retrieval.hits)}):
                answer = self._guard(self._generator.generate(cleaned, retrieval.hits, context))
            _count(answer)
            yield AnswerEvent("token", answer.text)
            yield AnswerEvent("answer", answer=answer)
            return
        # The stream resumes in other threads: its stage is timed, not made current.
        timer = open_stage(Stage.GENERATE, **{"rag.passages": len(retrieval.hits)})
        try:
            for event in self._generator.stream(cleaned, retrieval.hits, context):
                if event.answer is not None:  # the tokens are out; the answer is checked
                    timer.end()
                    event = AnswerEvent("answer", answer=self._guard(event.answer))
                    assert event.answer is not None
                    self._remember(cleaned, context, event.answer, vector)
                    _count(event.answer)
                yield event
        finally:
            timer.end()

    def _embed(self, question: str) -> QueryVector | None:
        """The question's embedding when a cache will use it (None without a cache: the
        retriever embeds on its own, and not at all in sparse mode)."""
        if self._cache is None:
            return None
        return QueryVector(self._retriever.embed_query(question))

    def _cached(
        self, question: str, context: RequestContext
    ) -> tuple[Answer | None, QueryVector | None]:
        """A cached answer (an exact repeat before anything is embedded, then by meaning),
        and the question's embedding when one was computed: retrieval and `put` reuse it.
        A broken cache must not break answering: its errors count as misses."""
        if self._cache is None:
            return None, None
        try:
            repeat = self._cache.repeat(question, context, self._corpus)
        except StoreError as exc:
            count_cache(CacheResult.ERROR)
            log.warning("answer cache lookup failed: %s", exc)
            repeat = None
        if repeat is not None:
            return repeat, None
        vector = self._embed(question)
        if vector is None:
            return None, None
        try:
            return self._cache.lookup(question, context, self._corpus, vector=vector), vector
        except StoreError as exc:
            count_cache(CacheResult.ERROR)
            log.warning("answer cache lookup failed: %s", exc)
            return None, vector

    def _retrieve(
        self,
        question: str,
        top_k: int | None,
        filters: Filters | None,
        context: RequestContext,
        vector: QueryVector | None = None,
    ) -> Retrieval | Answer:
        """Hits, or (retrieval down) a stale cached answer as the last rung; else raise.

        `vector` is the question's embedding when the cache lookup already computed it.
        """
        try:
            retrieval = self._retriever.retrieve(
                question, top_k=top_k, filters=filters, dense=vector, scope=context.scope
            )
            return dataclasses.replace(retrieval, hits=self._screen(retrieval.hits))
        except StoreError:
            if self._cache is not None and vector is not None:
                try:
                    stale = self._cache.lookup(
                        question, context, self._corpus, allow_stale=True, vector=vector
                    )
                except StoreError:
                    stale = None
                if stale is not None:
                    count_degraded(Rung.STALE_CACHE, Degradation.RETRIEVAL_FAILED)
                    log.warning("retrieval failed; serving a cached answer")
                    return stale
            raise

    def _remember(
        self,
        question: str,
        context: RequestContext,
        answer: Answer,
        vector: QueryVector | None,
    ) -> None:
        """Cache grounded LLM answers only: they are the costly ones, and checked."""
        provenance = answer.provenance
        if (
            self._cache is None
            or vector is None
            or not answer.found
            or provenance is None
            or provenance.rung != Rung.LLM
            or provenance.grounded is not True
        ):
            return
        try:
            self._cache.put(question, context, self._corpus, answer, vector=vector)
        except StoreError as exc:
            log.warning("could not cache the answer: %s", exc)


def _count(answer: Answer) -> None:
    """Count the answer by the rung that gave it (no provenance: the extractive rung),
    and tell the request what it used (the audit trail's documents, model, cost)."""
    provenance = answer.provenance
    count_answer(Rung.EXTRACTIVE if provenance is None else provenance.rung)
    note(
        documents=[c.source for c in answer.citations] or [p.chunk.source for p in answer.passages],
        text=answer.question,
        model=provenance.model if provenance else answer.generator,
        route=provenance.route if provenance else "",
        cost_usd=provenance.cost_usd if provenance else 0.0,
    )
