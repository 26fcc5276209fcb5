"""Parsing: one file in, typed `Element`s out, offline and torch-free.

Markdown, text, HTML and DOCX go through unstructured's partitioners. PDFs go through
pdfminer.six directly, the text layer that unstructured's "fast" strategy reads too:
unstructured 0.27 imports its torch-based inference package for every PDF strategy.
Any parser failure becomes an `IngestError` that names the file and the reason; the
batch goes on. See docs/adr/0004-parsing-offline.md.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from core.errors import IngestError, UnsupportedFormatError
from core.types import Element, ParsedDocument

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".docx", ".pdf")
_KIND_ALIASES = {"UncategorizedText": "NarrativeText"}


class _TableRows(HTMLParser):
    """Flattens unstructured's `text_as_html` into one 'a | b | c' line per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_text(html: str) -> str:
    parser = _TableRows()
    parser.feed(html)
    return "\n".join(" | ".join(row) for row in parser.rows if row)


def _partitioner(suffix: str) -> Callable[..., list[Any]]:
    """Import only the partitioner this file needs (each pulls in its own libraries)."""
    if suffix in (".md", ".markdown"):
        from unstructured.partition.md import partition_md

        return partition_md
    if suffix in (".html", ".htm"):
        from unstructured.partition.html import partition_html

        return partition_html
    if suffix in (".txt", ".text"):
        from unstructured.partition.text import partition_text

        return partition_text
    if suffix == ".docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx
    if suffix == ".pdf":
        return partition_pdf_text_layer
    raise UnsupportedFormatError(
        f"no parser for {suffix or 'files without an extension'}; supported: "
        + ", ".join(SUPPORTED_SUFFIXES)
    )


@dataclass(frozen=True, slots=True)
class _Box:
    text: str
    size: float
    page: int


def partition_pdf_text_layer(filename: str) -> list[Element]:
    """Text boxes of a PDF's text layer, with page numbers; larger fonts become titles.

    Title levels come from font size: the largest heading size is depth 0, the next 1...
    Body text is the most common size. No OCR: a scanned PDF yields no elements.
    """
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine

    boxes: list[_Box] = []
    for page_number, page in enumerate(extract_pages(filename), 1):
        for item in page:
            if not isinstance(item, LTTextContainer):
                continue
            text = " ".join(item.get_text().split())
            sizes = [
                round(char.size, 1)
                for line in item
                if isinstance(line, LTTextLine)
                for char in line
                if isinstance(char, LTChar)
            ]
            if text and sizes:
                boxes.append(_Box(text, Counter(sizes).most_common(1)[0][0], page_number))
    if not boxes:
        return []
    body = Counter(b.size for b in boxes).most_common(1)[0][0]
    heading_sizes = sorted({b.size for b in boxes if b.size > body * 1.1}, reverse=True)
    elements = []
    for box in boxes:
        if box.size in heading_sizes and len(box.text) < 200:
            elements.append(Element(box.text, "Title", box.page, heading_sizes.index(box.size)))
        elif box.text.startswith(("- ", "• ")):
            elements.append(Element(box.text[2:], "ListItem", box.page))
        else:
            elements.append(Element(box.text, "NarrativeText", box.page))
    return elements


def _element(raw: Any) -> Element | None:
    if isinstance(raw, Element):
        return raw
    text = str(raw.text or "").strip()
    kind = _KIND_ALIASES.get(raw.category, raw.category)
    metadata = raw.metadata
    if kind == "Table" and getattr(metadata, "text_as_html", None):
        text = table_text(metadata.text_as_html) or text
    if not text or kind in ("PageBreak", "Header", "Footer", "PageNumber"):
        return None
    depth = getattr(metadata, "category_depth", None)
    return Element(text=text, kind=kind, page=metadata.page_number, depth=int(depth or 0))


class UnstructuredParser:
    """`Parser` on unstructured's per-format partitioners."""

    def parse(self, path: str, source: str | None = None) -> ParsedDocument:
        file = Path(path)
        partition = _partitioner(file.suffix.lower())
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if not data.strip():
            raise IngestError(f"{path}: the file is empty")
        try:
            raw_elements = partition(filename=str(file))
        except Exception as exc:
            raise IngestError(f"{path}: {type(exc).__name__}: {exc}") from exc
        elements = tuple(e for e in map(_element, raw_elements) if e is not None)
        if not elements:
            raise IngestError(f"{path}: no text could be extracted")
        titles = [e.text for e in elements if e.kind == "Title"]
        return ParsedDocument(
            source=source or file.name,
            title=titles[0] if titles else file.stem,
            elements=elements,
            content_hash=hashlib.sha256(data).hexdigest(),
        )
