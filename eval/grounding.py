"""How well the groundedness guard tells supported answers from unsupported ones, measured
on the golden set (`rag eval grounding`, ADR 0022).

Real answers are the golden questions' cited answers. Unsupported ones are made from
them in two ways an LLM goes wrong: the same sentences cited to another question's
passages (a claim the passages do not make), and every number in a sentence changed (a
figure made up). Two support scores are compared at their thresholds: the guard's word
overlap (with its every-number rule) and the cosine between a sentence and its best cited
passage under the template's embedding model.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import time
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.types import Answer, Citation
from governance.grounding import answer_support, sentences

_DIGITS = re.compile(r"\d+")


def _numbers_changed(answer: Answer) -> Answer | None:
    if not _DIGITS.search(answer.text.replace("[", " [")):
        return None
    text = re.sub(r"(?<!\[)\b(\d+)\b(?!\])", lambda m: str(int(m.group(1)) + 7), answer.text)
    return None if text == answer.text else dataclasses.replace(answer, text=text)


def _cited_elsewhere(answer: Answer, other: Answer) -> Answer:
    """`answer`'s text, its citations pointing at `other`'s passages."""
    chunks = [p.chunk for p in other.passages] or [p.chunk for p in answer.passages]
    citations = tuple(
        Citation.of(c.number, chunks[(c.number - 1) % len(chunks)]) for c in answer.citations
    )
    return dataclasses.replace(answer, citations=citations, passages=other.passages)


def _overlap_flags(answer: Answer, min_support: float) -> bool:
    return any(not s.supported(min_support) for s in answer_support(answer))


def measure(settings: Settings, docs: Path) -> dict[str, Any]:
    from components import build_components
    from eval.golden import golden_index

    ctx = build_components(settings)
    items, store = golden_index(ctx, docs)
    retriever = ctx.retriever(store)
    answers = []
    for item in items:
        hits = retriever.search(item.question, top_k=settings.retrieval.top_k)
        answer = ctx.generator.generate(item.question, hits)
        if answer.found and answer.citations:
            answers.append(answer)
    store.close()
    swapped = [_cited_elsewhere(a, answers[(i + 1) % len(answers)]) for i, a in enumerate(answers)]
    numbers = [n for a in answers if (n := _numbers_changed(a)) is not None]

    def cosine_score(answer: Answer) -> float:
        """The weakest sentence's best cosine with a passage the answer cites."""
        texts = {p.chunk.id: p.chunk.text for p in answer.passages}
        cited = [texts.get(c.chunk_id, c.quote) for c in answer.citations]
        said = sentences(answer.text)
        vectors = ctx.embedder.embed_documents([*said, *cited])
        best = []
        for i in range(len(said)):
            s = vectors[i]
            best.append(
                max(sum(a * b for a, b in zip(s, p, strict=True)) for p in vectors[len(said) :])
            )
        return min(best) if best else 1.0

    min_support = settings.governance.min_sentence_support
    started = time.perf_counter()
    overlap = {
        "false_flag_rate": _rate([_overlap_flags(a, min_support) for a in answers]),
        "detect_swapped": _rate([_overlap_flags(a, min_support) for a in swapped]),
        "detect_numbers": _rate([_overlap_flags(a, min_support) for a in numbers]),
    }
    overlap_us = (
        (time.perf_counter() - started) * 1e6 / (len(answers) + len(swapped) + len(numbers))
    )
    started = time.perf_counter()
    real_cos = [cosine_score(a) for a in answers]
    swapped_cos = [cosine_score(a) for a in swapped]
    number_cos = [cosine_score(a) for a in numbers]
    cosine_us = (time.perf_counter() - started) * 1e6 / (len(answers) + len(swapped) + len(numbers))
    # The cosine's best threshold on these very answers (its most favourable case).
    threshold = max(
        sorted(set(real_cos)),
        key=lambda t: _rate([c >= t for c in real_cos]) + _rate([c < t for c in swapped_cos]),
    )
    cosine = {
        "threshold": round(threshold, 3),
        "false_flag_rate": _rate([c < threshold for c in real_cos]),
        "detect_swapped": _rate([c < threshold for c in swapped_cos]),
        "detect_numbers": _rate([c < threshold for c in number_cos]),
    }
    return {
        "answers": len(answers),
        "swapped": len(swapped),
        "numbers_changed": len(numbers),
        "overlap": {**overlap, "min_support": min_support, "us_per_answer": round(overlap_us, 1)},
        "cosine": {**cosine, "us_per_answer": round(cosine_us, 1)},
        "real_support_p50": round(
            statistics.median(min(s.score for s in answer_support(a)) for a in answers), 3
        ),
    }


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0
