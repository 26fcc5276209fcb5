"""Ingest -> ask on the embedded engine with the real local model, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.wiring import AppContext, build_app_context
from core.settings import Settings
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover

pytestmark = pytest.mark.integration


def _ingest(context: AppContext, folder: Path) -> int:
    report = context.documents.ingest(
        discover(folder, SUPPORTED_SUFFIXES),
        folder,
    )
    assert report.ok, report.failed
    return report.chunks


@pytest.fixture
def context(settings: Settings, sample_corpus: Path) -> Iterator[AppContext]:
    context = build_app_context(settings)
    _ingest(context, sample_corpus)
    yield context
    context.close()


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("Which vector store does the template use by default?", "0001-embedded-vector-store.html"),
        ("How are chunk ids made deterministic?", "0003-chunking.pdf"),
        (
            "Which embedding model is the default and how was it chosen?",
            "0002-default-embedding-model.docx",
        ),
        (
            "How does unstructured get the spaCy model without a download?",
            "0004-parsing-offline.txt",
        ),
    ],
)
def test_answers_cite_the_right_document(context: AppContext, question: str, source: str) -> None:
    answer = context.service.ask(question)
    assert answer.found
    assert answer.citations[0].source == source
    assert "[1]" in answer.text


def test_pdf_citations_carry_a_page(context: AppContext) -> None:
    answer = context.service.ask("How are chunk ids made deterministic?")
    assert answer.citations[0].page is not None


def test_unrelated_questions_are_not_answered(context: AppContext) -> None:
    answer = context.service.ask("What is the boiling point of mercury in Kelvin?")
    assert not answer.found
    assert answer.citations == ()


def test_reingesting_the_same_folder_adds_nothing(context: AppContext, sample_corpus: Path) -> None:
    before = context.store.count()
    _ingest(context, sample_corpus)
    assert context.store.count() == before


def test_a_changed_file_replaces_its_chunks(
    context: AppContext, sample_corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    note = folder / "note.md"
    note.write_text("# Note\n\nThe first version talks about zebras.\n\n## Two\n\nMore zebras.\n")
    _ingest(context, folder)
    first = context.store.count({"source": "note.md"})
    note.write_text("# Note\n\nThe second version talks about giraffes only.\n")
    _ingest(context, folder)
    assert (first, context.store.count({"source": "note.md"})) == (2, 1)
    hits = context.service.search("zebras", filters={"source": "note.md"})
    assert all("zebras" not in h.chunk.text for h in hits)


def test_filters_restrict_search_to_a_source(context: AppContext) -> None:
    hits = context.service.search("vector store", top_k=5, filters={"source": "architecture.md"})
    assert hits
    assert {h.chunk.source for h in hits} == {"architecture.md"}
