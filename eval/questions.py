"""Start a golden set for your own documents: `rag eval questions DOCS --out q.jsonl`.

A language model reads passages sampled across the folder and writes, for each, one
question the passage answers and the shortest exact answer. Replies are untrusted input:
a line is kept only if it parses, the question is a question, and the answer occurs in the
passage word for word (so `eval-docs` can score it), which drops most invented answers.
Review the file before you rely on it; add off-corpus questions (`"answers": []`) by hand.
Each call's tokens and cost go to the ledger under the tenant `eval`.

It needs a model (RAG_LLM__ENABLED=true, e.g. the local one from `make llm-local`);
offline without one it says so instead of guessing.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ProviderError
from core.ports import ChatModel
from core.settings import Settings
from core.types import ChatMessage, Chunk, LedgerEntry, Rung
from eval.answers import normalize_answer

PROMPT = (
    "Read the passage. Write one question a user of this documentation might ask that the "
    "passage answers, and the shortest exact answer copied from the passage (at most 12 "
    'words). Reply with JSON only: {{"question": "...", "answer": "..."}}.\n\n'
    "Passage (from {source}):\n{text}"
)
_MAX_ANSWER_WORDS = 15


@dataclass(frozen=True, slots=True)
class Generated:
    written: int
    rejected: int
    reasons: dict[str, int]


def sample_chunks(chunks: Sequence[Chunk], count: int, seed: int = 0) -> list[Chunk]:
    """Up to `count` passages spread over the documents (round robin, seeded), skipping
    the short ones that hold no answerable statement."""
    by_source: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        if len(chunk.text.split()) >= 25:
            by_source.setdefault(chunk.source, []).append(chunk)
    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    for items in by_source.values():
        rng.shuffle(items)
    picked: list[Chunk] = []
    while len(picked) < count and any(by_source.values()):
        for source in sorted(by_source):
            if by_source[source] and len(picked) < count:
                picked.append(by_source[source].pop())
    return picked


def parse_reply(reply: str, passage: str) -> tuple[dict[str, Any] | None, str]:
    """The question line a model's reply makes, or None and why it was rejected."""
    match = re.search(r"\{.*\}", reply, re.DOTALL)
    if match is None:
        return None, "no JSON object"
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None, "invalid JSON"
    question, answer = data.get("question"), data.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None, "question or answer missing"
    question, answer = " ".join(question.split()), " ".join(answer.split())
    if not question.endswith("?") or not 3 <= len(question.split()) <= 40:
        return None, "not a question"
    if not answer or len(answer.split()) > _MAX_ANSWER_WORDS:
        return None, "answer empty or too long"
    if normalize_answer(answer) not in normalize_answer(passage):
        return None, "answer not in the passage"
    return {"question": question, "answers": [answer]}, ""


def generate_questions(
    settings: Settings,
    folder: Path,
    out: Path,
    count: int = 20,
    seed: int = 0,
    model: ChatModel | None = None,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """Write up to `count` checked question lines for `folder` to `out`."""
    from components import build_components
    from eval.docs import parse_folder

    ctx = build_components(settings)
    if model is None:
        if not settings.llm.enabled:
            raise ConfigError(
                "question generation needs a language model: set RAG_LLM__ENABLED=true "
                "(the local one: `make llm-local`, or a hosted one in the catalog); offline "
                "without one, write questions.jsonl by hand (eval/realdocs has examples)"
            )
        model = ctx.chat_models[settings.llm.models[0]]
    spec = ctx.catalog.get(model.name) if model.name in settings.llm.models else None
    timeout = spec.timeout_s if spec is not None else 30.0
    chunks, _ = parse_folder(ctx, folder)  # eval-docs reports parse failures
    reasons: dict[str, int] = {}
    lines: list[str] = []
    for chunk in sample_chunks(chunks, count, seed):
        prompt = PROMPT.format(source=chunk.source, text=chunk.text)
        started = time.perf_counter()
        try:
            reply = model.complete([ChatMessage("user", prompt)], 200, timeout)
        except ProviderError:
            reasons["model error"] = reasons.get("model error", 0) + 1
            continue
        finally:
            if progress is not None:
                progress(1)
        ctx.ledger.record(
            LedgerEntry(
                at=datetime.now(UTC),
                tenant="eval",
                model=model.name,
                rung=Rung.LLM,
                input_tokens=reply.usage.input_tokens,
                output_tokens=reply.usage.output_tokens,
                cost_usd=spec.cost(reply.usage) if spec is not None else 0.0,
                latency_ms=(time.perf_counter() - started) * 1000,
                route="question-generation",
            )
        )
        line, reason = parse_reply(reply.text, chunk.text)
        if line is None:
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        lines.append(json.dumps({**line, "source": chunk.source}))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return Generated(len(lines), sum(reasons.values()), reasons)
