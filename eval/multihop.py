"""Multi-hop evaluation of the agentic mode (issue 16, docs/adr/0028-agentic-mode.md).

`build_set` composes a multi-hop set from a SQuAD-style QA folder: two questions about
the same article whose gold paragraphs differ, joined into one two-part question ("<q1>,
and <q2>?"), with both gold passage ids and both answers. It is synthetic composition,
not human-written multi-hop: each half is a real SQuAD question, the join is mechanical.
The set's folder holds `multihop.jsonl` and a symlink `corpus.jsonl` to the source
corpus, so it is a dataset folder of its own and nothing is copied.

`run_mode` answers every question through the `Orchestrator` in one forced mode and
scores what the answer was given:

- `both_gold_recall@10`: both gold passages among the passages given to the answer, at
  most 10 distinct passages counted (`given_passages` states the rule);
- `answer_in_context`: both answer strings occur in those passages (SQuAD-normalised);
- latency p50/p95 per question and the model cost from provenance.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.errors import InvalidRequestError
from core.types import Answer, Filters, RequestContext, ScoredChunk
from eval.answers import normalize_answer
from eval.datasets import load_qa_folder
from eval.stats import percentiles

if TYPE_CHECKING:
    from retrieval.agentic import Ask, Orchestrator

DEPTH = 10
SET_FILE = "multihop.jsonl"
#: A second question starts lower-case after ", and " only when its first word is one of
#: these (a proper noun such as "Denver" keeps its capital).
_LOWER_FIRST = frozenset(
    "what which who whom whose when where why how in on at the a an for from during after "  # noqa: SIM905
    "before by to of with is are was were did does do can could has have had according "
    "along approximately about as since under over between into against".split()
)
_MAX_WORDS = 22


@dataclass(frozen=True, slots=True)
class MultiHopItem:
    id: str
    question: str
    gold: tuple[str, str]
    answers: tuple[str, ...]


# --- building the set ------------------------------------------------------------------


def join_questions(first: str, second: str, lowercase: Callable[[str], bool] | None = None) -> str:
    """ "Who won?" + "Where was it?" -> "Who won, and where was it?". The second question's
    first word is lowercased when `lowercase(word)` says so (default: a question or
    function word), so a name keeps its capital."""
    head = " ".join(first.split()).rstrip("?").rstrip()
    tail = " ".join(second.split()).rstrip("?").rstrip()
    word = tail.split(maxsplit=1)[0] if tail else ""
    if word.lower() in _LOWER_FIRST or (lowercase is not None and lowercase(word)):
        tail = tail[0].lower() + tail[1:]
    return f"{head}, and {tail}?"


def _common_words(texts: Iterable[str]) -> Callable[[str], bool]:
    """A word the corpus writes in lower case more often than capitalised ("It", "Cities")
    is a common word; one it capitalises ("Denver", "Warsaw") is a name."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(re.findall(r"\b[A-Za-z][a-z]+\b", text))
    return lambda word: counts[word.lower()] > counts[word[:1].upper() + word[1:].lower()]


def _usable(question: str) -> bool:
    """One plain question: a single '?', no part separators of its own, not too long."""
    text = question.strip()
    return (
        text.endswith("?")
        and text.count("?") == 1
        and ";" not in text
        and not re.search(r",\s+and\s", text, re.IGNORECASE)
        and 3 <= len(text.split()) <= _MAX_WORDS
    )


def build_set(squad: Path, out: Path, n: int = 120, seed: int = 0) -> dict[str, Any]:
    """Write `out/multihop.jsonl` (n two-part questions) and link `out/corpus.jsonl` to
    the source corpus. Pairs are drawn per article in turn (seeded), so every article with
    questions contributes; a pair is kept only when neither gold paragraph holds the
    other half's answer, so no single passage answers the whole question."""
    if n < 1:
        raise InvalidRequestError(f"n must be at least 1, not {n}")
    dataset, rows = load_qa_folder(squad)
    texts = {doc.id: normalize_answer(doc.title + " " + doc.text) for doc in dataset.corpus}
    common = _common_words(doc.text for doc in dataset.corpus)
    by_article: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.gold_context_id and row.answers and _usable(row.question):
            by_article[row.gold_context_id.rsplit("__p", 1)[0]].append(row)
    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    pools: dict[str, list[tuple[Any, Any]]] = {}
    for article in sorted(by_article):
        questions = by_article[article]
        pairs = []
        for _ in range(40 * max(1, n // max(1, len(by_article)))):
            a, b = rng.sample(questions, 2) if len(questions) >= 2 else (None, None)
            if a is None or b is None or a.gold_context_id == b.gold_context_id:
                continue
            if _contains(texts.get(b.gold_context_id, ""), a.answers[0]) or _contains(
                texts.get(a.gold_context_id, ""), b.answers[0]
            ):
                continue
            pairs.append((a, b))
        pools[article] = pairs
    chosen: list[tuple[Any, Any]] = []
    used: set[str] = set()
    articles = sorted(pools)
    rng.shuffle(articles)
    while len(chosen) < n and any(pools.values()):
        for article in articles:
            while pools[article]:
                a, b = pools[article].pop()
                if a.id not in used and b.id not in used:
                    used |= {a.id, b.id}
                    chosen.append((a, b))
                    break
            if len(chosen) == n:
                break
    if len(chosen) < n:
        raise InvalidRequestError(f"{squad} yields only {len(chosen)} two-passage pairs, not {n}")
    out.mkdir(parents=True, exist_ok=True)
    with (out / SET_FILE).open("w", encoding="utf-8") as handle:
        for a, b in chosen:
            entry = {
                "id": f"{a.id}+{b.id}",
                "question": join_questions(a.question, b.question, common),
                "gold": [a.gold_context_id, b.gold_context_id],
                "answers": [a.answers[0], b.answers[0]],
            }
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    link = out / "corpus.jsonl"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to((squad / "corpus.jsonl").resolve())
    return {
        "questions": len(chosen),
        "articles": len({a.gold_context_id.rsplit("__p", 1)[0] for a, _ in chosen}),
        "out": str(out),
        "corpus": str(link.resolve()),
    }


def _contains(haystack: str, needle: str) -> bool:
    return bool(normalize_answer(needle)) and f" {normalize_answer(needle)} " in f" {haystack} "


def load_set(folder: Path) -> list[MultiHopItem]:
    """`folder/multihop.jsonl`; a bad line is an error naming the line."""
    path = folder / SET_FILE
    if not path.is_file():
        raise InvalidRequestError(f"{path} is missing: build it with `rag eval multihop-build`")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            gold = tuple(str(g) for g in row["gold"])
            if len(gold) != 2 or gold[0] == gold[1]:
                raise ValueError("gold must be two different passage ids")
            answers = tuple(str(a) for a in row["answers"])
            items.append(MultiHopItem(str(row["id"]), str(row["question"]), gold, answers))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidRequestError(f"{path}:{number}: not a multi-hop line ({exc})") from exc
    if not items:
        raise InvalidRequestError(f"{path} holds no questions")
    return items


# --- scoring ---------------------------------------------------------------------------


def given_passages(calls: Sequence[Sequence[ScoredChunk]], depth: int = DEPTH) -> list[str]:
    """The passage ids (chunk sources) the answer was given, at most `depth` distinct.

    `calls` are the ranked passages of each retrieval, in plan order (one for single-shot).
    A passage's rank is its best chunk's rank within a call, and across calls its best
    rank in any; ties go to the earlier call. So single-shot keeps its first `depth`
    distinct passages, and the agentic union is interleaved rank by rank, then cut."""
    best: dict[str, tuple[int, int]] = {}
    for order, hits in enumerate(calls):
        ranked = list(dict.fromkeys(hit.chunk.source for hit in hits))
        for rank, source in enumerate(ranked):
            best[source] = min(best.get(source, (rank, order)), (rank, order))
    return sorted(best, key=lambda source: best[source])[:depth]


def both_gold(given: Sequence[str], gold: Sequence[str]) -> bool:
    return all(g in given for g in gold)


def answers_in_context(answers: Sequence[str], contexts: Sequence[str]) -> bool:
    """Every answer string occurs in the passages (SQuAD-normalised)."""
    haystack = f" {normalize_answer(' '.join(contexts))} "
    return all(_contains(haystack.strip(), a) for a in answers) and bool(answers)


class Recorder:
    """An `Ask` that remembers each call's passages, for the question being run."""

    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        self._lock = threading.Lock()
        self.calls: list[tuple[str, tuple[ScoredChunk, ...]]] = []

    def __call__(
        self, question: str, top_k: int | None, filters: Filters | None, context: RequestContext
    ) -> Answer:
        answer = self._ask(question, top_k, filters, context)
        with self._lock:
            self.calls.append((question, tuple(answer.passages)))
        return answer

    def take(self, plan: Sequence[str]) -> list[tuple[ScoredChunk, ...]]:
        """This question's calls in plan order, and forget them."""
        with self._lock:
            calls, self.calls = self.calls, []
        position = {q: i for i, q in enumerate(plan)}
        calls.sort(key=lambda call: position.get(call[0], len(position)))
        return [passages for _, passages in calls]


def run_mode(
    items: Sequence[MultiHopItem],
    orchestrator: Orchestrator,
    recorder: Recorder,
    mode: Literal["single", "agentic"],
    top_k: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Every question in one forced mode: the figures and one row per question."""
    rows: list[dict[str, Any]] = []
    for item in items:
        recorder.take(())
        start = time.perf_counter()
        result = orchestrator.ask(item.question, mode=mode, top_k=top_k)
        latency = (time.perf_counter() - start) * 1000
        calls = recorder.take(result.sub_questions)
        given = given_passages(calls)
        texts: dict[str, list[str]] = defaultdict(list)
        for hit in result.answer.passages:
            texts[hit.chunk.source].append(hit.chunk.text)
        contexts = [text for source in given for text in texts.get(source, [])]
        provenance = result.answer.provenance
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "gold": list(item.gold),
                "sub_questions": list(result.sub_questions),
                "given": given,
                "both_gold": both_gold(given, item.gold),
                "gold_found": sum(g in given for g in item.gold),
                "answer_in_context": answers_in_context(item.answers, contexts),
                "latency_ms": round(latency, 2),
                "cost_usd": provenance.cost_usd if provenance is not None else 0.0,
                "stopped_by": result.stopped_by,
            }
        )
        if progress is not None:
            progress(1)
    return summarize(rows)


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    count = len(rows) or 1
    return {
        f"both_gold_recall@{DEPTH}": round(sum(r["both_gold"] for r in rows) / count, 4),
        f"one_gold_recall@{DEPTH}": round(sum(r["gold_found"] >= 1 for r in rows) / count, 4),
        "answer_in_context": round(sum(r["answer_in_context"] for r in rows) / count, 4),
        "latency_ms": percentiles([r["latency_ms"] for r in rows]),
        "cost_usd": round(sum(r["cost_usd"] for r in rows), 6),
        "questions": len(rows),
        "stopped_by_bound": sum(r["stopped_by"] is not None for r in rows),
        "rows": list(rows),
    }


def delta(single: dict[str, Any], agentic: dict[str, Any]) -> dict[str, Any]:
    """Agentic minus single-shot, in points for the shares, as a ratio for latency."""
    shares = (f"both_gold_recall@{DEPTH}", f"one_gold_recall@{DEPTH}", "answer_in_context")
    out: dict[str, Any] = {
        f"{key}_points": round(100 * (agentic[key] - single[key]), 1) for key in shares
    }
    base = single["latency_ms"]["p50"] or 1.0
    out["latency_p50_ratio"] = round(agentic["latency_ms"]["p50"] / base, 2)
    out["cost_usd"] = round(agentic["cost_usd"] - single["cost_usd"], 6)
    return out
