"""Loaders for public benchmark folders (BEIR layout), read by path, never copied in."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class BeirDoc:
    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A BEIR folder: corpus, the queries that have qrels in `split`, and the qrels."""

    name: str
    corpus: list[BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidRequestError(f"{path}:{number}: not JSON ({exc})") from exc


def load_corpus(folder: Path) -> list[BeirDoc]:
    """Only the documents of a BEIR folder (benchmarks of ingestion need no queries)."""
    path = folder / "corpus.jsonl"
    if not path.is_file():
        raise InvalidRequestError(f"{path} is missing: expected a BEIR folder")
    return [
        BeirDoc(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _jsonl(path)
    ]


def load_beir(folder: Path, split: str = "test", limit: int | None = None) -> BeirDataset:
    """Load a BEIR folder; qrels may use CRLF line ends; `limit` keeps the first n queries."""
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for required in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not required.is_file():
            raise InvalidRequestError(f"{required} is missing: expected a BEIR folder")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader((line.rstrip("\r\n") for line in handle), delimiter="\t")
        for row in rows:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {
        str(row["_id"]): str(row["text"])
        for row in _jsonl(folder / "queries.jsonl")
        if str(row["_id"]) in qrels
    }
    if limit is not None:
        queries = dict(list(queries.items())[:limit])
    qrels = {q: qrels[q] for q in queries}
    return BeirDataset(folder.name, load_corpus(folder), queries, qrels)


def load_qa_folder(folder: Path, limit: int | None = None) -> tuple[BeirDataset, list[QaRow]]:
    """A QA folder: `corpus.jsonl` (BEIR) and `qa.jsonl` rows {id, question, answers[],
    gold_context_id}; `answers: []` (gold_context_id null or absent) marks a question the
    corpus cannot answer. `limit` keeps the first n questions."""
    qa_path = folder / "qa.jsonl"
    for required in (folder / "corpus.jsonl", qa_path):
        if not required.is_file():
            raise InvalidRequestError(f"{required} is missing: expected a QA folder")
    rows = []
    for row in _jsonl(qa_path):
        try:
            answers = tuple(str(a) for a in row["answers"])  # type: ignore[attr-defined]
            gold = row.get("gold_context_id")
            if answers and not gold:
                raise KeyError("gold_context_id")
            rows.append(
                QaRow(str(row["id"]), str(row["question"]), answers, str(gold) if gold else None)
            )
        except KeyError as exc:
            raise InvalidRequestError(f"{qa_path}: a row lacks {exc}") from exc
        if limit is not None and len(rows) >= limit:
            break
    corpus = [
        BeirDoc(str(r["_id"]), str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _jsonl(folder / "corpus.jsonl")
    ]
    qrels = {row.id: {row.gold_context_id: 1} for row in rows if row.gold_context_id}
    queries = {row.id: row.question for row in rows}
    return BeirDataset(folder.name, corpus, queries, qrels), rows


@dataclass(frozen=True, slots=True)
class QaRow:
    id: str
    question: str
    answers: tuple[str, ...]
    #: None for a question the corpus does not answer.
    gold_context_id: str | None


def write_unanswerable(source: Path, out: Path, remove: int = 4, seed: int = 0) -> dict[str, Any]:
    """Copy a QA folder with `remove` of its articles taken out of the corpus: their
    questions stay, marked unanswerable (`answers: []`). The questions are shuffled
    (seeded), so the first n (`LIMIT`) mix both kinds. An article is the part of a passage
    id before `__p` (the SQuAD folder's convention), matched to the rows' `title`."""
    dataset, rows = load_qa_folder(source)
    titles = sorted({_article(row.gold_context_id) for row in rows if row.gold_context_id})
    if not 0 < remove < len(titles):
        raise InvalidRequestError(f"remove must be 1..{len(titles) - 1} articles, not {remove}")
    removed = sorted(random.Random(seed).sample(titles, remove))  # noqa: S311 - a sample, not a secret
    out.mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in dataset.corpus:
            if _article(doc.id) not in removed:
                handle.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}))
                handle.write("\n")
    questions = []
    for row in rows:
        gone = row.gold_context_id is not None and _article(row.gold_context_id) in removed
        questions.append(
            {
                "id": row.id,
                "question": row.question,
                "answers": [] if gone else list(row.answers),
                "gold_context_id": None if gone else row.gold_context_id,
            }
        )
    random.Random(seed).shuffle(questions)  # noqa: S311 - an order, not a secret
    with (out / "qa.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(q) + "\n" for q in questions)
    unanswerable = sum(not q["answers"] for q in questions)
    return {"removed": removed, "questions": len(questions), "unanswerable": unanswerable}


def _article(passage_id: str) -> str:
    return passage_id.rsplit("__p", 1)[0]
