"""`make eval-docs`: a user's folder in its own collection, every question scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from eval.docs import load_questions, report_view, run_docs
from eval.report import write_reports

pytestmark = pytest.mark.integration

SED = """SED(1)                          User Commands                         SED(1)

NAME
       sed - stream editor for filtering and transforming text

DESCRIPTION
       -n, --quiet, --silent
              suppress automatic printing of pattern space

       -i[SUFFIX], --in-place[=SUFFIX]
              edit files in place (makes backup if SUFFIX supplied)

GNU sed 4.9                      January 2023                           SED(1)
"""

PAGE = """<html><body><div class="header"><p>Next: <a href="b.html">Boats</a>,
Previous: <a href="a.html">Apples</a>, Up: <a href="i.html">Top</a></p></div>
<h2>Compression levels</h2><p>The default compression level of the packer is 6,
balancing speed and size.</p><dl><dt>--fast</dt><dd>Compress faster, level 1.</dd></dl>
</body></html>"""


def test_a_folder_is_indexed_apart_and_every_question_is_scored(
    settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sed.1.txt").write_text(SED)
    (docs / "packer.html").write_text(PAGE)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"question": "What does the -n option of sed do?", '
        '"answers": ["suppress automatic printing"], "source": "sed.1.txt"}\n'
        '{"question": "What is the default compression level of the packer?", '
        '"answers": ["6"], "source": "packer.html"}\n'
        '{"question": "How do I configure nginx rate limiting?", "answers": [], "source": null}\n'
    )
    report = run_docs(settings, docs, load_questions(questions))
    assert report["failed_documents"].keys() == {"broken.pdf"}  # one bad file, run goes on
    assert report["source_hit@3"] == 1.0
    assert report["answer_contains"] == 1.0
    assert report["abstain_rate"] == 1.0
    assert report["false_abstain_rate"] == 0.0
    assert set(report["answer_words"]) == {"p50", "p95"}
    assert report["answer_words.p50"] == report["answer_words"]["p50"]
    first, second, third = report["questions"]
    assert first["sources"] == ["sed.1.txt"]
    assert not first["abstained"]
    assert "Next:" not in second["answer"]
    assert third["abstained"]
    assert third["sources"] == []
    # Its own collection: the configured one stays empty.
    assert not (settings.store.path / settings.store.collection).exists()
    paths = write_reports(report_view(report), tmp_path / "reports", "docs")
    assert "Failures" not in paths["html"].read_text()
