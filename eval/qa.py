"""Question answering runs: retrieve, generate, score retrieval and answers per question.

Shared by the golden set (relevance = chunk ids, resolved from the sample corpus) and by
QA folders such as SQuAD (relevance = the gold paragraph's id, i.e. the chunk's source).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.ports import Generator
from eval.answers import RagasScorer, answer_in_context, exact_match, f1, string_present
from eval.stats import percentiles
from retrieval.search import Retriever

RETRIEVAL_DEPTH = 10


@dataclass(frozen=True, slots=True)
class QaItem:
    """One question; `answers` empty means the corpus does not answer it."""

    id: str
    question: str
    answers: tuple[str, ...]
    relevant: frozenset[str]
    reference_contexts: tuple[str, ...] = ()


@dataclass(slots=True)
class QaRun:
    """Per-question rows and the aggregates a report shows."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    aggregates: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    #: Length in words of the answers given to answerable questions (abstentions left out).
    answer_words: dict[str, float] = field(default_factory=dict)


def _ranking_metrics(ranked: Sequence[str], relevant: frozenset[str], k: int) -> dict[str, float]:
    hits = [key in relevant for key in ranked]
    first = next((i for i, hit in enumerate(hits) if hit), None)
    found = {key for key in ranked[:k] if key in relevant}
    return {
        f"recall@{k}": len(found) / len(relevant),
        "hit@1": float(bool(hits[:1] and hits[0])),
        "mrr@10": 0.0 if first is None or first >= 10 else 1.0 / (first + 1),
    }


def run_qa(
    items: Sequence[QaItem],
    retriever: Retriever,
    generator: Generator,
    top_k: int = 5,
    match_on: Literal["id", "source"] = "id",
    with_ragas: bool = True,
    progress: Callable[[int], None] | None = None,
) -> QaRun:
    """Answer every item and score it; aggregates are means over the items they apply to:
    answer metrics over the answerable items (an abstention scores 0), `abstained` over the
    unanswerable ones (`answers` empty)."""
    scorer = RagasScorer() if with_ragas else None
    run = QaRun()
    stage_samples: dict[str, list[float]] = {}
    words: list[float] = []
    for item in items:
        retrieval = retriever.retrieve(item.question, top_k=max(top_k, RETRIEVAL_DEPTH))
        start = time.perf_counter()
        answer = generator.generate(item.question, retrieval.hits[:top_k])
        timings = {**retrieval.timings_ms, "generate": (time.perf_counter() - start) * 1000}
        timings["total"] = sum(timings.values())
        for stage, ms in timings.items():
            stage_samples.setdefault(stage, []).append(ms)
        contexts = [hit.chunk.text for hit in retrieval.hits[:top_k]]
        ranked = [h.chunk.id if match_on == "id" else h.chunk.source for h in retrieval.hits]
        row: dict[str, Any] = {
            "id": item.id,
            "question": item.question,
            "answer": answer.text,
            "found": answer.found,
            "citations": [c.chunk_id for c in answer.citations],
            "retrieved": ranked[:top_k],
            "latency_ms": {k: round(v, 2) for k, v in timings.items()},
        }
        provenance = answer.provenance
        if provenance is not None:
            row["rung"] = provenance.rung.value
            row["model"] = provenance.model
            row["tokens"] = provenance.usage.input_tokens + provenance.usage.output_tokens
            row["cost_usd"] = provenance.cost_usd
            if answer.found and provenance.grounded is not None:
                row["grounded"] = float(provenance.grounded)
        if item.answers:
            row.update(_ranking_metrics(ranked, item.relevant, top_k) if item.relevant else {})
            row["answer_in_context"] = answer_in_context(item.answers, contexts)
            row["exact_match"] = exact_match(answer.text, item.answers)
            row["token_f1"] = row["f1"] = f1(answer.text, item.answers)
            row["string_present"] = string_present(answer.text, item.answers)
            row["answered"] = float(answer.found)
            if answer.found:
                words.append(len(answer.text.split()))
            if scorer is not None:
                row.update(
                    scorer.score(
                        item.question,
                        answer.text,
                        item.answers[0],
                        contexts,
                        item.reference_contexts,
                    )
                )
        else:
            row["abstained"] = float(not answer.found)
        run.rows.append(row)
        if progress is not None:
            progress(1)
    metric_keys = sorted(
        {
            k
            for row in run.rows
            for k, v in row.items()
            if isinstance(v, float) and k not in ("score", "cost_usd")
        }
    )
    for key in metric_keys:
        values = [row[key] for row in run.rows if key in row]
        run.aggregates[key] = round(sum(values) / len(values), 4)
    # The two error rates of the "not found" decision, named as in the abstention literature.
    if "abstained" in run.aggregates:
        run.aggregates["abstain_rate"] = run.aggregates["abstained"]
    if "answered" in run.aggregates:
        run.aggregates["false_abstain_rate"] = round(1 - run.aggregates["answered"], 4)
    run.answer_words = percentiles(words)
    run.latency_ms = {stage: percentiles(samples) for stage, samples in stage_samples.items()}
    rungs: dict[str, int] = {}
    for row in run.rows:
        key = f"{row.get('rung', 'unknown')}:{row.get('model', generator.name)}"
        rungs[key] = rungs.get(key, 0) + 1
    run.cost = {
        "llm_tokens": sum(int(row.get("tokens", 0)) for row in run.rows),
        "usd": round(sum(float(row.get("cost_usd", 0.0)) for row in run.rows), 6),
        "answers_by_rung": rungs,
    }
    run.skipped = {
        name: "no judge model configured (the LLM gateway is not set up)"
        for name in ("faithfulness", "answer_relevancy")
    }
    return run
