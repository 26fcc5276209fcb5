"""The golden set: hand-written questions over the sample corpus, with reference answers.

Entries point at content, not at ids: each relevant passage is a source file plus a
distinctive phrase it contains. At run time the phrase is resolved to the chunk ids the
current chunker produces (chunk ids are content hashes), so editing the docs or the
chunker never leaves stale ids behind; an entry that no longer resolves fails loudly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InvalidRequestError
from core.types import Chunk
from eval.qa import QaItem

if TYPE_CHECKING:
    from components import Components
    from core.ports import VectorStore

GOLDEN_PATH = Path(__file__).parent / "golden" / "sample_corpus.jsonl"


@dataclass(frozen=True, slots=True)
class Relevant:
    source: str
    contains: str


@dataclass(frozen=True, slots=True)
class GoldenEntry:
    id: str
    question: str
    answers: tuple[str, ...]
    relevant: tuple[Relevant, ...]


def load_golden(path: Path = GOLDEN_PATH) -> list[GoldenEntry]:
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            entries.append(
                GoldenEntry(
                    id=str(row["id"]),
                    question=str(row["question"]),
                    answers=tuple(str(a) for a in row["answers"]),
                    relevant=tuple(
                        Relevant(str(r["source"]), str(r["contains"])) for r in row["relevant"]
                    ),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidRequestError(f"{path}:{number}: not a golden entry ({exc})") from exc
    return entries


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def resolve(entries: list[GoldenEntry], chunks: list[Chunk]) -> list[QaItem]:
    """Turn (source, phrase) references into chunk ids; refuse entries that match nothing."""
    items = []
    for entry in entries:
        ids: set[str] = set()
        contexts: list[str] = []
        for ref in entry.relevant:
            matches = [
                c for c in chunks if c.source == ref.source and _flat(ref.contains) in _flat(c.text)
            ]
            if not matches:
                raise InvalidRequestError(
                    f"golden entry {entry.id}: no chunk of {ref.source} contains "
                    f"{ref.contains!r}; update eval/golden/sample_corpus.jsonl"
                )
            ids |= {c.id for c in matches}
            contexts += [c.text for c in matches]
        items.append(
            QaItem(entry.id, entry.question, entry.answers, frozenset(ids), tuple(contexts))
        )
    return items


def corpus_fingerprint(chunks: list[Chunk], pipeline: str) -> str:
    digest = hashlib.sha256(pipeline.encode())
    for chunk in chunks:
        digest.update(chunk.id.encode())
    return digest.hexdigest()[:12]


def golden_index(ctx: Components, docs: Path) -> tuple[list[QaItem], VectorStore]:
    """The sample corpus rendered from `docs`, parsed, indexed (cached by content), and
    the golden questions resolved against its chunks: what every golden-set run reads."""
    from eval.docs import index_chunks, parse_folder
    from ingest import sample_corpus

    corpus_dir = ctx.settings.data_dir / "eval" / "golden-corpus"
    sample_corpus.build(docs, corpus_dir)
    chunks, failed = parse_folder(ctx, corpus_dir)
    if failed:
        raise InvalidRequestError(f"the sample corpus did not parse: {failed}")
    return resolve(load_golden(), chunks), index_chunks(ctx, chunks, "golden-index")
