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
