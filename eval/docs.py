"""Evaluate the system on your own documents: `make eval-docs DOCS=<folder> QUESTIONS=<file>`.

The folder is parsed, chunked and indexed with the configured pipeline into a collection
of its own (cached by content, under `.data/eval/`), then every question is asked the way
`/v1/ask` asks it. Question lines are `{"question": ..., "answers": [...], "source": ...}`:
`answers` are strings a correct answer contains (empty: the documents do not answer it,
and the system should say so), `source` the file that answers it (a path relative to the
folder, or null).

Figures: `source_hit@3` (the right file among the first three distinct files retrieved),
`answer_contains` (an expected string in the answer, normalised), `abstain_rate` (on the
unanswerable questions), `false_abstain_rate` (on the others), answer length in words and
latency; every question with its answer, whether it abstained and the files it cited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import IngestError, InvalidRequestError
from core.settings import Settings
from core.types import Chunk
from eval.answers import string_present
from eval.stats import percentiles
from store.edge import EdgeStore

if TYPE_CHECKING:
    from components import Components

SOURCE_DEPTH = 3


@dataclass(frozen=True, slots=True)
class DocQuestion:
    question: str
    answers: tuple[str, ...]
    source: str | None


def load_questions(path: Path) -> list[DocQuestion]:
    """The question file; a bad line is an error naming the line, not a skipped question."""
    if not path.is_file():
        raise InvalidRequestError(f"{path} is missing: expected a JSONL file of questions")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row.get("answers", [])
            source = row.get("source")
            if not isinstance(row["question"], str) or not row["question"].strip():
                raise ValueError("question must be a non-empty string")
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError("answers must be a list of strings")
            if source is not None and not isinstance(source, str):
                raise ValueError("source must be a file name or null")
        except (json.JSONDecodeError, KeyError, ValueError, AttributeError) as exc:
            raise InvalidRequestError(f"{path}:{number}: not a question line ({exc})") from exc
        questions.append(DocQuestion(row["question"], tuple(answers), source))
    if not questions:
        raise InvalidRequestError(f"{path} holds no questions")
    return questions


Task = Callable[[str, int], Callable[[int], None]]


def parse_folder(
    ctx: Components, folder: Path, task: Task | None = None
) -> tuple[list[Chunk], dict[str, str]]:
    """Chunks of every supported file under `folder` (sources relative to it) and the
    files that could not be parsed (name -> reason): one bad file never stops the run."""
    from ingest.parse import SUPPORTED_SUFFIXES
    from ingest.pipeline import discover

    if not folder.is_dir():
        raise InvalidRequestError(f"{folder} is not a folder of documents")
    paths = discover(folder, SUPPORTED_SUFFIXES)
    advance = task("parse", len(paths)) if task else None
    chunks: list[Chunk] = []
    failed: dict[str, str] = {}
    for path in paths:
        source = path.relative_to(folder).as_posix()
        try:
            chunks += ctx.chunker.chunk(ctx.parser.parse(str(path), source))
        except IngestError as exc:
            failed[source] = str(exc)
        if advance is not None:
            advance(1)
    return chunks, failed


def index_chunks(ctx: Components, chunks: list[Chunk], prefix: str) -> EdgeStore:
    """An embedded collection of `chunks` under `.data/eval`, named by their content and
    the ingest-side pipeline, so a second run with the same inputs only queries."""
    from eval.golden import corpus_fingerprint
    from ingest.pipeline import Indexer

    settings = ctx.settings
    pipeline = (
        f"{ctx.embedder.name}|{ctx.sparse.name}|{settings.ingest.chunk_size}/"
        f"{settings.ingest.chunk_overlap}"
    )
    store = EdgeStore(
        settings.data_dir / "eval", f"{prefix}-{corpus_fingerprint(chunks, pipeline)}"
    )
    store.ensure_collection(ctx.embedder.dim)
    if store.count() != len(chunks):
        Indexer(ctx.embedder, ctx.sparse, store).index(chunks)
    return store


def run_docs(
    settings: Settings,
    folder: Path,
    questions: list[DocQuestion],
    progress: Task | None = None,
) -> dict[str, Any]:
    """Index the folder, ask every question, and score the answers."""
    from components import build_components

    started = time.perf_counter()
    ctx = build_components(settings)
    chunks, failed = parse_folder(ctx, folder, progress)
    if not chunks:
        raise InvalidRequestError(f"no document in {folder} could be parsed")
    store = index_chunks(ctx, chunks, "docs")
    retriever = ctx.retriever(store)
    generator = ctx.generator
    top_k = settings.retrieval.top_k
    advance = progress("questions", len(questions)) if progress else None
    rows: list[dict[str, Any]] = []
    try:
        for item in questions:
            start = time.perf_counter()
            retrieval = retriever.retrieve(item.question, top_k=top_k)
            answer = generator.generate(item.question, retrieval.hits)
            latency = (time.perf_counter() - start) * 1000
            ranked = list(dict.fromkeys(hit.chunk.source for hit in retrieval.hits))
            cited = list(dict.fromkeys(c.source for c in answer.citations))
            row: dict[str, Any] = {
                "question": item.question,
                "expected": list(item.answers),
                "source": item.source,
                "answer": answer.text,
                "abstained": not answer.found,
                "sources": cited,
                "retrieved": ranked,
                "words": len(answer.text.split()) if answer.found else 0,
                "latency_ms": round(latency, 2),
            }
            if item.source is not None:
                row["source_hit@3"] = item.source in ranked[:SOURCE_DEPTH]
            if item.answers:
                row["answer_contains"] = bool(string_present(answer.text, item.answers))
            row["failure"] = _failure(row)
            rows.append(row)
            if advance is not None:
                advance(1)
    finally:
        store.close()
    return _report(settings, folder, rows, chunks, failed, time.perf_counter() - started)


def _failure(row: dict[str, Any]) -> str | None:
    """Why a question counts against the system, in words (None: it did not)."""
    if not row["expected"]:
        return None if row["abstained"] else "answered a question the documents do not answer"
    if row["abstained"]:
        return "said not found, but the documents answer it"
    if not row["answer_contains"]:
        return "the answer lacks every expected string"
    if row.get("source_hit@3") is False:
        return "the expected file is not among the first three retrieved"
    return None


def _mean(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _report(
    settings: Settings,
    folder: Path,
    rows: list[dict[str, Any]],
    chunks: list[Chunk],
    failed: dict[str, str],
    seconds: float,
) -> dict[str, Any]:
    answerable = [r for r in rows if r["expected"]]
    unanswerable = [r for r in rows if not r["expected"]]
    words = percentiles([r["words"] for r in answerable if not r["abstained"]])
    aggregates = {
        "source_hit@3": _mean([r["source_hit@3"] for r in rows if "source_hit@3" in r]),
        "answer_contains": _mean([r["answer_contains"] for r in answerable]),
        "abstain_rate": _mean([r["abstained"] for r in unanswerable]),
        "false_abstain_rate": _mean([r["abstained"] for r in answerable]),
    }
    return {
        "title": f"Your documents: {folder.name}",
        "suite": "docs",
        **aggregates,
        "answer_words": words,
        "answer_words.p50": words["p50"],  # the same figure flat, for tools that do not nest
        "latency_ms": percentiles([r["latency_ms"] for r in rows]),
        "counts": {
            "questions": len(rows),
            "unanswerable": len(unanswerable),
            "documents": len({c.source for c in chunks}),
            "chunks": len(chunks),
            "failed_documents": len(failed),
        },
        "failed_documents": failed,
        "config": {
            "documents": str(folder),
            "embedding_model": settings.embedding.model,
            "retrieval": settings.retrieval.model_dump(mode="json"),
            "answer": settings.answer.model_dump(mode="json"),
            "chunking": f"{settings.ingest.chunk_size}/{settings.ingest.chunk_overlap}",
        },
        "seconds": round(seconds, 1),
        "questions": rows,
    }


def report_view(report: dict[str, Any]) -> dict[str, Any]:
    """The shape `eval.report.write_reports` draws: metrics, latency, failures."""
    metrics = {
        k: report[k]
        for k in ("source_hit@3", "answer_contains", "abstain_rate", "false_abstain_rate")
        if report.get(k) is not None
    }
    metrics["answer_words.p50"] = report["answer_words"]["p50"]
    return {
        "title": report["title"],
        "config": report["config"],
        "aggregates": metrics,
        "latency_ms": {"question": report["latency_ms"]},
        "failures": [
            {
                "question": r["question"],
                "why": r["failure"],
                "expected": "; ".join(r["expected"]) or "(not in the documents)",
                "source": r["source"] or "",
                "retrieved": ", ".join(r["retrieved"][:SOURCE_DEPTH]),
                "answer": r["answer"],
            }
            for r in report["questions"]
            if r["failure"]
        ],
    }
