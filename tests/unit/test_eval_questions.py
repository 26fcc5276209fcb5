"""Drafting a question file with a model: replies are checked, costs are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings
from eval.questions import generate_questions, parse_reply, sample_chunks
from tests.fakes import ScriptedChatModel

PASSAGE = "The default block size of the packer is 900k, chosen for memory reasons."


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("no json here", "no JSON object"),
        ('{"question": "What?", ', "no JSON object"),
        ('{"question": 3, "answer": "900k"}', "question or answer missing"),
        ('{"question": "Tell me the block size.", "answer": "900k"}', "not a question"),
        ('{"question": "What is the block size?", "answer": "1200k"}', "answer not in the passage"),
        ('{"question": "What is the block size?", "answer": ""}', "answer empty or too long"),
    ],
)
def test_bad_replies_are_rejected_with_a_reason(reply: str, reason: str) -> None:
    assert parse_reply(reply, PASSAGE) == (None, reason)


def test_a_good_reply_becomes_a_question_line() -> None:
    reply = 'Sure! {"question": "What is the default  block size?", "answer": "900K"}'
    line, _ = parse_reply(reply, PASSAGE)
    assert line == {"question": "What is the default block size?", "answers": ["900K"]}


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("a", "b"):
        (docs / f"{name}.md").write_text(
            f"# Packer {name}\n\n{PASSAGE} " + "More words about compression. " * 10 + "\n"
        )
    return docs


def test_questions_are_written_checked_and_costed(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    good = '{"question": "What is the default block size?", "answer": "900k"}'
    model = ScriptedChatModel("fake", [good, "I cannot help."])
    out = tmp_path / "q.jsonl"
    result = generate_questions(settings, _folder(tmp_path), out, count=5, model=model)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert model.calls == 2  # one passage per document was long enough
    assert (result.written, result.rejected, result.reasons) == (1, 1, {"no JSON object": 1})
    assert lines[0]["answers"] == ["900k"]
    assert lines[0]["source"] in {"a.md", "b.md"}


def test_without_a_model_it_says_one_is_needed(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="needs a language model"):
        generate_questions(settings, _folder(tmp_path), tmp_path / "q.jsonl")


def test_passages_are_spread_over_documents() -> None:
    from core.types import Chunk

    def chunk(source: str, index: int) -> Chunk:
        text = " ".join(["word"] * 30)
        return Chunk(f"{source}{index}", source, text, source, "", None, index, "h")

    chunks = [chunk("a.md", i) for i in range(5)] + [chunk("b.md", 0)]
    assert sorted(c.source for c in sample_chunks(chunks, 2)) == ["a.md", "b.md"]
    assert len(sample_chunks(chunks, 100)) == 6
