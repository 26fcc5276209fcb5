"""Each supported format parses into typed elements with titles and, for PDF, pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import IngestError, UnsupportedFormatError
from ingest.parse import UnstructuredParser, table_text

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "expected_title"),
    [
        ("architecture.md", "Architecture of the RAG reference template"),
        ("0001-embedded-vector-store.html", "ADR 0001"),
        ("0002-default-embedding-model.docx", "ADR 0002"),
        ("0003-chunking.pdf", "ADR 0003"),
        ("0004-parsing-offline.txt", "ADR 0004"),
    ],
)
def test_every_sample_format_parses(sample_corpus: Path, name: str, expected_title: str) -> None:
    document = UnstructuredParser().parse(str(sample_corpus / name))
    assert document.source == name
    assert document.title.startswith(expected_title)
    assert any(e.kind == "Title" for e in document.elements)
    assert sum(len(e.text) for e in document.elements) > 500


def test_pdf_elements_carry_page_numbers(sample_corpus: Path) -> None:
    document = UnstructuredParser().parse(str(sample_corpus / "0003-chunking.pdf"))
    assert {e.page for e in document.elements} >= {1}
    assert all(e.page is not None for e in document.elements)


def test_markdown_tables_stay_rows(sample_corpus: Path) -> None:
    document = UnstructuredParser().parse(str(sample_corpus / "architecture.md"))
    table = next(e for e in document.elements if e.kind == "Table")
    assert "ingest | parsing, chunking" in table.text


def test_empty_and_unknown_files_fail_with_a_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(IngestError, match="empty"):
        UnstructuredParser().parse(str(empty))
    photo = tmp_path / "photo.xyz"
    photo.write_bytes(b"\x89PNG not really")
    with pytest.raises(UnsupportedFormatError, match="supported"):
        UnstructuredParser().parse(str(photo))


def test_corrupt_pdf_is_an_ingest_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n this is not a pdf body")
    with pytest.raises(IngestError, match=r"broken\.pdf"):
        UnstructuredParser().parse(str(broken))


def test_table_html_flattens_to_rows() -> None:
    assert (
        table_text("<table><tr><th>a</th><td>b</td></tr><tr><td>1</td><td> 2 </td></tr></table>")
        == "a | b\n1 | 2"
    )


def _office_samples(folder: Path) -> None:
    import openpyxl
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly Plan"
    slide.placeholders[1].text = "Grow revenue by 10 percent\nHire two engineers"
    deck.save(str(folder / "plan.pptx"))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Budget"
    for row in (["item", "cost"], ["servers", 1200], ["licenses", 300]):
        sheet.append(row)
    book.save(str(folder / "budget.xlsx"))
    (folder / "people.csv").write_text("name,role\nAda,engineer\nGrace,admiral\n")
    (folder / "release.eml").write_text(
        "From: ada@example.com\nTo: team@example.com\nSubject: Release plan\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
        "The release ships on Friday after the final review.\n"
    )
    (folder / "config.json").write_text('{"service": {"name": "search", "replicas": 3}}')
    (folder / "events.jsonl").write_text(
        '{"event": "deploy", "version": "1.2"}\n\n{"event": "rollback", "version": "1.1"}\n'
    )


@pytest.mark.parametrize(
    ("name", "title", "kinds", "phrase"),
    [
        ("plan.pptx", "Quarterly Plan", {"Title", "NarrativeText"}, "Hire two engineers"),
        ("budget.xlsx", "Budget", {"Title", "Table"}, "servers | 1200"),
        ("people.csv", "people", {"Table"}, "Ada | engineer"),
        ("release.eml", "Release plan", {"Title"}, "ships on Friday"),
        ("config.json", "config", {"NarrativeText"}, "service.replicas: 3"),
        ("events.jsonl", "events", {"NarrativeText"}, "event: rollback"),
    ],
)
def test_office_mail_and_data_formats(
    tmp_path: Path, name: str, title: str, kinds: set[str], phrase: str
) -> None:
    _office_samples(tmp_path)
    document = UnstructuredParser().parse(str(tmp_path / name))
    assert document.title == title
    assert kinds <= {e.kind for e in document.elements}
    assert any(phrase in e.text for e in document.elements)


def test_jsonl_records_become_separate_elements(tmp_path: Path) -> None:
    _office_samples(tmp_path)
    document = UnstructuredParser().parse(str(tmp_path / "events.jsonl"))
    assert [e.text for e in document.elements] == [
        "event: deploy\nversion: 1.2",
        "event: rollback\nversion: 1.1",
    ]


def test_office_files_under_a_wrong_name_are_detected_by_content(tmp_path: Path) -> None:
    _office_samples(tmp_path)
    renamed = tmp_path / "deck.md"
    renamed.write_bytes((tmp_path / "plan.pptx").read_bytes())
    assert UnstructuredParser().parse(str(renamed)).title == "Quarterly Plan"
