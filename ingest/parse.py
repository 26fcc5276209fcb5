"""Parsing: one file in, typed `Element`s out, offline and torch-free.

Markdown, text, HTML and DOCX go through unstructured's partitioners. PDFs go through
pdfminer.six directly, the text layer that unstructured's "fast" strategy reads too:
unstructured 0.27 imports its torch-based inference package for every PDF strategy.
Any parser failure becomes an `IngestError` that names the file and the reason; the
batch goes on. See docs/adr/0004-parsing-offline.md.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import statistics
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from core.errors import IngestError, UnsupportedFormatError
from core.types import Element, ParsedDocument

SUPPORTED_SUFFIXES = (
    ".md",
    ".markdown",
    ".txt",
    ".text",
    ".html",
    ".htm",
    ".docx",
    ".pdf",
    ".pptx",
    ".xlsx",
    ".csv",
    ".eml",
    ".json",
    ".jsonl",
)
_KIND_ALIASES = {"UncategorizedText": "NarrativeText"}
_BULLETS = ("- ", "• ", "* ")


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


_TEXT_FORMATS = frozenset({"md", "txt", "html", "csv", "json", "jsonl"})
_BY_SUFFIX: dict[str, str] = {
    ".md": "md", ".markdown": "md", ".txt": "txt", ".text": "txt", ".html": "html",
    ".htm": "html", ".docx": "docx", ".pdf": "pdf", ".pptx": "pptx", ".xlsx": "xlsx",
    ".csv": "csv", ".eml": "eml", ".json": "json", ".jsonl": "jsonl",
}  # fmt: skip
_OOXML: dict[bytes, str] = {b"word/": "docx", b"ppt/": "pptx", b"xl/": "xlsx"}
_EMAIL_HEADERS = (b"from:", b"received:", b"return-path:", b"message-id:", b"mime-version:")


def detect_format(path: Path, head: bytes) -> str:
    """The format by content first (magic bytes), then by extension.

    A PDF or a DOCX saved under another name is still parsed as what it is; a text
    extension on binary content is refused rather than indexed as garbage.
    """
    if head.startswith(b"%PDF-"):
        return "pdf"
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        for marker, fmt in _OOXML.items():
            if marker in head:
                return fmt
        if _BY_SUFFIX.get(suffix) in _OOXML.values():
            return _BY_SUFFIX[suffix]  # parts listed past the sniffed head
        raise UnsupportedFormatError(f"{path}: a zip archive that is not a DOCX/PPTX/XLSX file")
    sniff = head[:512].lstrip().lower()
    if sniff.startswith((b"<!doctype html", b"<html")):
        return "html"
    if suffix not in (".json", ".jsonl", ".eml") and sniff.startswith(_EMAIL_HEADERS):
        return "eml"
    if suffix not in _BY_SUFFIX:
        raise UnsupportedFormatError(
            f"{path}: no parser for {suffix or 'files without an extension'}; supported: "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    return _BY_SUFFIX[suffix]


def decode_text(path: Path, data: bytes) -> str:
    """Bytes of a text file as str: UTF-8 (with or without BOM), UTF-16 by BOM, Windows-1252,
    else the encoding charset-normalizer finds; binary and undecodable bytes are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path}: binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Windows-1252 is the usual legacy encoding of Western documents; statistical detection
    # confuses it with its siblings on short texts, so try it first and keep it when the
    # result reads like a Western language (mostly ASCII letters around a few accents).
    try:
        western = data.decode("cp1252")
        letters = [c for c in western if c.isalpha()]
        if letters and sum(c.isascii() for c in letters) / len(letters) >= 0.7:
            return western
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.chaos > 0.2:
        raise IngestError(f"{path}: cannot decode the text (not UTF-8, no reliable encoding)")
    return str(best)


def _partition(fmt: str, path: Path, text: str | None) -> list[Any]:
    """Import only the partitioner this file needs (each pulls in its own libraries)."""
    if fmt == "md":
        from unstructured.partition.md import partition_md

        return list(partition_md(text=text))
    if fmt == "html":
        from unstructured.partition.html import partition_html

        return list(partition_html(text=text))
    if fmt == "txt":
        from unstructured.partition.text import partition_text

        return list(partition_text(text=text))
    if fmt == "docx":
        from unstructured.partition.docx import partition_docx

        return list(partition_docx(filename=str(path)))
    if fmt == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return list(partition_pptx(filename=str(path)))
    if fmt == "xlsx":
        from unstructured.partition.xlsx import partition_xlsx

        elements: list[Any] = []
        for table in partition_xlsx(filename=str(path)):
            sheet = getattr(table.metadata, "page_name", None)
            if sheet:  # the sheet name titles its table
                elements.append(Element(str(sheet), "Title", table.metadata.page_number, 0))
            elements.append(table)
        return elements
    if fmt == "csv":
        from unstructured.partition.csv import partition_csv

        return list(partition_csv(file=io.BytesIO((text or "").encode("utf-8"))))
    if fmt == "eml":
        from unstructured.partition.email import partition_email

        body = list(partition_email(filename=str(path)))  # MIME parts carry their charsets
        subject = getattr(body[0].metadata, "subject", None) if body else None
        return ([Element(str(subject), "Title", None, 0)] if subject else []) + body
    if fmt in ("json", "jsonl"):
        return partition_json(path, text or "", lines=fmt == "jsonl")
    return list(partition_pdf_text_layer(str(path)))


def _flatten(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [line for i, v in enumerate(value) for line in _flatten(v, f"{prefix}{i}.")]
    return [f"{prefix.rstrip('.')}: {value}"] if prefix else [str(value)]


def partition_json(path: Path, text: str, lines: bool) -> list[Element]:
    """One element per record (a JSONL line, or an item of a top-level array), as
    `key.path: value` lines, so field names are searchable beside their values."""
    import json

    try:
        records = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if lines
            else json.loads(text)
        )
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path}: invalid JSON ({exc})") from exc
    if not lines and not isinstance(records, list):
        records = [records]
    return [
        Element("\n".join(_flatten(r)), "NarrativeText")
        for r in records
        if r not in (None, "", [], {})
    ]


@dataclass(slots=True)
class _Line:
    text: str
    size: float
    page: int
    top: float
    bottom: float


def _pdf_lines(filename: str) -> list[_Line]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTChar, LTTextContainer, LTTextLine

    lines = []
    for page_number, page in enumerate(extract_pages(filename), 1):
        for box in page:
            if not isinstance(box, LTTextContainer):
                continue
            for line in box:
                if not isinstance(line, LTTextLine):
                    continue
                text = " ".join(line.get_text().split())
                sizes = [round(c.size, 1) for c in line if isinstance(c, LTChar)]
                if text and sizes:
                    size = Counter(sizes).most_common(1)[0][0]
                    lines.append(_Line(text, size, page_number, line.y1, line.y0))
    return lines


def partition_pdf_text_layer(filename: str) -> list[Element]:
    """Paragraphs of a PDF's text layer, with page numbers; larger fonts become titles.

    Lines are joined into a paragraph while they share a font size and the gap between
    them is a normal line gap (adaptive: the median gap of the document). Title levels
    come from font size: the largest heading size is depth 0. No OCR: a scanned PDF
    yields no elements.
    """
    lines = _pdf_lines(filename)
    if not lines:
        return []
    body = Counter(line.size for line in lines).most_common(1)[0][0]
    headings = sorted({line.size for line in lines if line.size > body * 1.1}, reverse=True)
    gaps = [
        a.bottom - b.top
        for a, b in itertools.pairwise(lines)
        if a.page == b.page and a.size == b.size and 0 <= a.bottom - b.top < 3 * a.size
    ]
    normal_gap = statistics.median(gaps) if gaps else 0.0
    paragraphs: list[list[_Line]] = []
    for line in lines:
        previous = paragraphs[-1][-1] if paragraphs else None
        continues = (
            previous is not None
            and previous.page == line.page
            and previous.size == line.size
            and 0 <= previous.bottom - line.top <= normal_gap * 1.3 + 0.5
            and not line.text.startswith(_BULLETS)
        )
        if continues:
            paragraphs[-1].append(line)
        else:
            paragraphs.append([line])
    elements = []
    for paragraph in paragraphs:
        text = " ".join(line.text for line in paragraph)
        first = paragraph[0]
        if first.size in headings and len(text) < 200:
            elements.append(Element(text, "Title", first.page, headings.index(first.size)))
        elif text.startswith(_BULLETS):
            elements.append(Element(text[2:], "ListItem", first.page))
        else:
            elements.append(Element(text, "NarrativeText", first.page))
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
    """`Parser` on unstructured's per-format partitioners (pdfminer for PDF)."""

    def __init__(self, max_bytes: int = 50 * 2**20) -> None:
        self._max_bytes = max_bytes

    def parse(self, path: str, source: str | None = None) -> ParsedDocument:
        file = Path(path)
        try:
            size = file.stat().st_size
            if size > self._max_bytes:
                raise IngestError(
                    f"{path}: {size / 2**20:.1f} MiB is over the {self._max_bytes / 2**20:.0f} "
                    "MiB limit (RAG_INGEST__MAX_FILE_MB)"
                )
            data = file.read_bytes()
        except OSError as exc:
            raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if not data.strip():
            raise IngestError(f"{path}: the file is empty")
        fmt = detect_format(file, data[:4096])
        text = decode_text(file, data) if fmt in _TEXT_FORMATS else None
        try:
            raw_elements = _partition(fmt, file, text)
        except Exception as exc:  # third-party parsers raise anything on bad input
            raise IngestError(f"{path}: {_reason(exc)}") from exc
        elements = tuple(e for e in map(_element, raw_elements) if e is not None)
        if not elements:
            raise IngestError(f"{path}: no text could be extracted (a scanned PDF needs OCR)")
        titles = [e.text for e in elements if e.kind == "Title"]
        return ParsedDocument(
            source=source or file.name,
            title=titles[0] if titles else file.stem,
            elements=elements,
            content_hash=hashlib.sha256(data).hexdigest(),
        )


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    if "Password" in name or "Encrypt" in name:
        return f"the document is encrypted ({name})"
    return f"{name}: {exc}" if str(exc) else name
