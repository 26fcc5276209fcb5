"""The query path end to end: retrieve -> (rerank) -> generate -> cite. Surfaces call this."""

from __future__ import annotations

import dataclasses
import time

from core.ports import Generator
from core.types import Answer, Filters, ScoredChunk, SearchMode
from retrieval.search import Retriever, normalize_query


class RagService:
    """What the API and the CLI call: search, or answer with citations."""

    def __init__(self, retriever: Retriever, generator: Generator) -> None:
        self._retriever = retriever
        self._generator = generator

    def search(
        self,
        query: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[ScoredChunk]:
        return self._retriever.search(query, top_k=top_k, filters=filters, mode=mode)

    def ask(
        self, question: str, top_k: int | None = None, filters: Filters | None = None
    ) -> Answer:
        cleaned = normalize_query(question)
        retrieval = self._retriever.retrieve(cleaned, top_k=top_k, filters=filters)
        start = time.perf_counter()
        answer = self._generator.generate(cleaned, retrieval.hits)
        timings = {**retrieval.timings_ms, "generate": (time.perf_counter() - start) * 1000}
        return dataclasses.replace(answer, timings_ms=timings)
