"""Parsing: one file in, typed `Element`s out, offline and torch-free, at a bounded cost.

Markdown, text, HTML and DOCX go through unstructured's partitioners. PDFs go through
pdfminer.six directly, the text layer that unstructured's "fast" strategy reads too:
unstructured 0.27 imports its torch-based inference package for every PDF strategy.
Any failure becomes an `IngestError` that names the file and the reason; the batch goes
on. See docs/adr/0004-parsing-offline.md.

Hostile files are refused before they cost much (`ParseLimits`, one RAG_INGEST__ knob
each): DOCX/PPTX/XLSX by their zip's central directory and one streamed pass over their
parts (nothing extracted), PDFs by page count, by the size their streams inflate to and by
characters per page, JSON by depth and by the text its flattening produces. Extracted text
never carries NUL characters or lone surrogates (they break the embedder, JSON and SQL).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import itertools
import logging
import os
import re
import stat
import statistics
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from core.errors import IngestError, UnsupportedFormatError
from core.types import Element, ParsedDocument
from ingest.structure import (
    clean_html,
    drop_boilerplate,
    drop_navigation_sections,
    info_to_markdown,
    is_page_number,
    is_running_line,
    is_toc_line,
    join_lines,
    looks_like_info,
    looks_like_manpage,
    partition_manpage,
    running_lines,
    strip_front_matter,
    tidy_headings,
    unligature,
)

if TYPE_CHECKING:
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams
    from pdfminer.pdfinterp import PDFResourceManager
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import PDFStream

log = logging.getLogger(__name__)

_KIND_ALIASES = {"UncategorizedText": "NarrativeText"}
_BULLETS = ("- ", "• ", "* ")
_MIB = 2**20


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one file may cost to parse; each refusal names the knob that raises its limit."""

    max_bytes: int = 50 * _MIB  # RAG_INGEST__MAX_FILE_MB
    max_unpacked_bytes: int = 200 * _MIB  # RAG_INGEST__MAX_UNPACKED_MB
    max_archive_entries: int = 10_000  # RAG_INGEST__MAX_ARCHIVE_ENTRIES
    max_elements: int = 100_000  # RAG_INGEST__MAX_ELEMENTS
    max_text_chars: int = 50 * _MIB  # RAG_INGEST__MAX_TEXT_MB
    max_pages: int = 2000  # RAG_INGEST__MAX_PAGES
    max_cells: int = 1_000_000  # RAG_INGEST__MAX_CELLS


_DEFAULTS = ParseLimits()


class _RefusedError(Exception):
    """A limit or a check refused the file; `UnstructuredParser.parse` adds the file's name."""


@dataclass(slots=True)
class _Budget:
    """A running allowance (bytes, characters); spending past it refuses the file."""

    left: int
    refusal: str

    def spend(self, amount: int) -> None:
        self.left -= amount
        if self.left < 0:
            raise _RefusedError(self.refusal)


def _text_budget(limits: ParseLimits) -> _Budget:
    return _Budget(
        limits.max_text_chars,
        f"over the {limits.max_text_chars / _MIB:.0f} MiB limit on extracted text "
        "(RAG_INGEST__MAX_TEXT_MB)",
    )


_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text safe for the embedder, JSON and PostgreSQL: NUL removed, lone surrogates (which
    no UTF-8 encoder accepts) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text.replace("\x00", ""))


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
#: Every file suffix a parser exists for (the keys above, in a stable order).
SUPPORTED_SUFFIXES = tuple(_BY_SUFFIX)
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


_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(path: Path, data: bytes) -> str:
    """Bytes of a text file as str: UTF-8 (with or without BOM), UTF-16/32 by BOM, Windows-1252,
    else the encoding charset-normalizer finds; binary and undecodable bytes are refused.

    A UTF-16/32 file cut short keeps what it holds (the incomplete last code unit is
    dropped); a lone surrogate inside it is refused, since no later stage could store it.
    """
    for bom, codec in _UNICODE_BOMS:
        if data.startswith(bom):
            decoder = codecs.getincrementaldecoder(codec)()
            try:
                return decoder.decode(data, final=False)  # not final: a dangling unit waits
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"{path}: invalid {codec.upper()} text ({exc.reason} at byte {exc.start})"
                ) from exc
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


# --- office files: the zip is read, never extracted ---------------------------------------
_CENTRAL_DIRECTORY_RECORD = b"PK\x01\x02"
_RATIO_FLOOR = 4 * _MIB  # smaller parts may compress as well as they like
_MAX_RATIO = 200  # real OOXML parts deflate 5-50:1; zip bombs reach 1000:1
_SCAN_CHUNK = _MIB
_TAG_WINDOW = 256  # a tag start this far from the end of a chunk is complete in it
# Units that cost memory downstream, in any namespace prefix: paragraphs (w:p in DOCX,
# a:p in DOCX text boxes and PPTX) become elements; spreadsheet cells (c) become cells
# of a data frame. Counted as an upper bound: table-cell paragraphs count too.
_UNITS = {
    "docx": re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?p[\s/>]"),
    "pptx": re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?p[\s/>]"),
    "xlsx": re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?c[\s/>]"),
}
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)")
# OOXML parts are UTF-8 or UTF-16 (ECMA-376 part 2); XML in UTF-32 or EBCDIC would hide
# its tags from the scan, so it is refused.
_FOREIGN_XML = (b"\x00\x00\x00<", b"<\x00\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00",
                b"\x4c\x6f\xa7\x94")  # fmt: skip


def _inspect_ooxml(data: bytes, fmt: str, limits: ParseLimits) -> None:
    """Refuse a DOCX/PPTX/XLSX whose parts would cost too much once unpacked.

    The central directory gives entry count, sizes and compression ratios without
    inflating anything; one streamed pass (1 MiB at a time) then counts paragraphs or
    cells, the units that cost memory in the partitioners, and refuses DTDs. python-docx,
    python-pptx and openpyxl already parse with `resolve_entities=False` (and libxml2
    caps entity amplification), so the DTD refusal is defence in depth: OOXML forbids
    DTDs, and a DOCTYPE there only ever means an attack.
    """
    records = data.count(_CENTRAL_DIRECTORY_RECORD)  # before zipfile builds ~0.5 KiB each
    if records > limits.max_archive_entries:
        raise _RefusedError(_too_many_entries(records, limits))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = archive.infolist()
        if len(entries) > limits.max_archive_entries:
            raise _RefusedError(_too_many_entries(len(entries), limits))
        unpacked = sum(entry.file_size for entry in entries)
        if unpacked > limits.max_unpacked_bytes:
            raise _RefusedError(
                f"the archive unpacks to {unpacked / _MIB:,.0f} MiB, over the "
                f"{limits.max_unpacked_bytes / _MIB:,.0f} MiB limit (RAG_INGEST__MAX_UNPACKED_MB)"
            )
        for entry in entries:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > _RATIO_FLOOR and ratio > _MAX_RATIO:
                raise _RefusedError(
                    f"the part {entry.filename} inflates {ratio:,.0f}:1 to "
                    f"{entry.file_size / _MIB:,.0f} MiB: a zip bomb, not a document"
                )
        units = sum(_scan_part(archive, entry, _UNITS[fmt]) for entry in entries)
    if fmt == "xlsx" and units > limits.max_cells:
        raise _RefusedError(
            f"the workbook holds {units:,} cells, over the {limits.max_cells:,} limit "
            "(RAG_INGEST__MAX_CELLS)"
        )
    if fmt != "xlsx" and units > limits.max_elements:
        raise _RefusedError(
            f"the document holds {units:,} paragraphs, over the {limits.max_elements:,} "
            "limit on elements (RAG_INGEST__MAX_ELEMENTS)"
        )


def _too_many_entries(count: int, limits: ParseLimits) -> str:
    return (
        f"the archive has {count:,} entries, over the {limits.max_archive_entries:,} limit "
        "(RAG_INGEST__MAX_ARCHIVE_ENTRIES)"
    )


def _scan_part(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, unit: re.Pattern[bytes]) -> int:
    """Units (paragraphs or cells) in one zip part, streamed; a DTD in an XML part refuses.

    zipfile stops a part at its declared size and checks its CRC, so a part cannot inflate
    past what the central directory said.
    """
    is_xml = entry.filename.lower().endswith((".xml", ".rels"))
    count, carry = 0, b""
    with archive.open(entry) as part:
        chunk = part.read(_SCAN_CHUNK)
        recode = _xml_recoder(entry.filename, chunk, is_xml)
        while chunk:
            buffer = carry + recode(chunk)
            cut = buffer.rfind(b"<")
            if cut < 0 or len(buffer) - cut > _TAG_WINDOW:
                cut = len(buffer)
            count += len(unit.findall(buffer, 0, cut))
            if is_xml and _DTD.search(buffer, 0, cut):
                raise _RefusedError(
                    f"the part {entry.filename} declares a DTD, which OOXML forbids"
                )
            carry = buffer[cut:]
            chunk = part.read(_SCAN_CHUNK)
    if is_xml and _DTD.search(carry):
        raise _RefusedError(f"the part {entry.filename} declares a DTD, which OOXML forbids")
    return count + len(unit.findall(carry))


def _xml_recoder(name: str, head: bytes, is_xml: bool) -> Callable[[bytes], bytes]:
    """A chunk-to-UTF-8 function for a part: UTF-16 XML is re-encoded so its tags are seen."""
    if is_xml and head.startswith(_FOREIGN_XML):
        raise _RefusedError(f"the part {name} is XML in an encoding OOXML does not allow")
    codec = None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    elif head.startswith(b"<\x00"):
        codec = "utf-16-le"
    elif head.startswith(b"\x00<"):
        codec = "utf-16-be"
    if codec is None:
        return bytes
    decoder = codecs.getincrementaldecoder(codec)("replace")
    return lambda chunk: decoder.decode(chunk).encode("utf-8", "replace")


# --- partitioners ------------------------------------------------------------------------
_NLP_MAX_CHARS = 10_000


def _bound_nlp_heuristics() -> None:
    """Cap the text unstructured's title-or-prose heuristics feed to spaCy.

    unstructured runs a spaCy pipeline over every paragraph it classifies; on one long
    paragraph that is ~3 GiB and ~100 s per million characters (measured). It already
    truncates to spaCy's `max_length` "for partition heuristics", which need only a
    paragraph's start; lowering that bound caps the cost. The extracted text is untouched.
    """
    try:
        from unstructured.nlp.tokenize import _get_nlp
    except ImportError:  # a later unstructured moved it: parse on, unbounded
        log.warning("cannot bound unstructured's spaCy heuristics: long paragraphs cost GiBs")
        return
    nlp = _get_nlp()
    nlp.max_length = min(nlp.max_length, _NLP_MAX_CHARS)


def _partition(fmt: str, path: Path, text: str | None, limits: ParseLimits) -> list[Any]:
    """Import only the partitioner this file needs (each pulls in its own libraries)."""
    if fmt in ("json", "jsonl"):
        return partition_json(path, text or "", lines=fmt == "jsonl", limits=limits)
    if fmt == "pdf":
        return partition_pdf_text_layer(str(path), limits=limits)
    if fmt == "txt" and looks_like_manpage(text or ""):  # a rendered man page: its own rules
        return partition_manpage(text or "")
    if fmt != "csv":  # every other unstructured partitioner classifies its paragraphs with
        _bound_nlp_heuristics()  # spaCy (~85 MB once loaded): not before one is needed
    if fmt == "md":
        from unstructured.partition.md import partition_md

        return list(partition_md(text=strip_front_matter(text or "")))
    if fmt == "html":
        from unstructured.partition.html import partition_html

        return list(partition_html(text=clean_html(text or "")))
    if fmt == "txt":
        if looks_like_info(text or ""):  # an info file: its headings are underlined
            from unstructured.partition.md import partition_md

            return list(partition_md(text=info_to_markdown(text or "")))
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

        # unstructured refuses a CSV spanning over CSV_MAX_CELLS (5M) cells before Pandas
        # allocates them, which bounds the wide or endless single-line CSV.
        return list(partition_csv(file=io.BytesIO((text or "").encode("utf-8"))))
    from unstructured.partition.email import partition_email

    # Attachments are not partitioned: unstructured would send them, unchecked, to any of
    # its partitioners (a DOCX bomb, a torch-based PDF path); ingest them as files instead.
    body = list(partition_email(filename=str(path), process_attachments=False))
    subject = getattr(body[0].metadata, "subject", None) if body else None
    return ([Element(str(subject), "Title", None, 0)] if subject else []) + body


_MAX_JSON_DEPTH = 100


def _flatten(value: Any, prefix: str, depth: int, budget: _Budget) -> Iterator[str]:
    """`key.path: value` lines, spending each on `budget`: a long key repeated over many
    leaves would otherwise turn a small file into gigabytes of lines."""
    if depth > _MAX_JSON_DEPTH:
        raise _RefusedError(f"JSON nested deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            key_text = str(key)
            budget.spend(len(prefix) + len(key_text) + 1)  # before the longer prefix is built
            yield from _flatten(item, f"{prefix}{key_text}.", depth + 1, budget)
        return
    leaf = str(value)
    budget.spend(len(leaf))
    yield f"{prefix.rstrip('.')}: {leaf}" if prefix else leaf


def _lines(text: str) -> Iterator[str]:
    """Lines of `text` one at a time (`splitlines` would hold them all at once)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def partition_json(
    path: Path, text: str, lines: bool, limits: ParseLimits | None = None
) -> list[Element]:
    """One element per record (a JSONL line, or an item of a top-level array), as
    `key.path: value` lines, so field names are searchable beside their values."""
    import json

    limits = limits or ParseLimits()
    budget = _text_budget(limits)
    try:
        records: Any = (
            (json.loads(line) for line in _lines(text) if line.strip())
            if lines
            else json.loads(text)
        )
        if not lines and not isinstance(records, list):
            records = [records]
        elements: list[Element] = []
        for record in records:
            if record in (None, "", [], {}):
                continue
            if len(elements) >= limits.max_elements:
                raise _RefusedError(_too_many_elements(limits))
            elements.append(Element("\n".join(_flatten(record, "", 0, budget)), "NarrativeText"))
    except json.JSONDecodeError as exc:
        raise IngestError(f"{path}: invalid JSON ({exc})") from exc
    except RecursionError as exc:  # the decoder recursed before `_flatten` could count
        raise _RefusedError(f"JSON nested deeper than {_MAX_JSON_DEPTH} levels") from exc
    return elements


def _too_many_elements(limits: ParseLimits) -> str:
    return f"over the {limits.max_elements:,} element limit (RAG_INGEST__MAX_ELEMENTS)"


# --- PDF: pdfminer, with its streams and pages bounded ------------------------------------
_MAX_PAGE_CHARS = 100_000  # pdfminer holds ~0.7 KiB per character of a page (measured)


@dataclass(slots=True)
class _Line:
    text: str
    size: float
    page: int
    top: float
    bottom: float
    left: float = 0.0


def _bounded(pieces: Iterator[bytes], limit: int, keep: bool) -> tuple[int, bytes]:
    """The size of a decoder's output, stopping past `limit`; the bytes only when `keep`
    (another filter follows), so measuring holds no more than decoding would."""
    size, kept = 0, []
    for piece in pieces:
        size += len(piece)
        if keep:
            kept.append(piece)
        if size > limit:
            break
    return size, b"".join(kept)


def _inflated(data: bytes, limit: int) -> Iterator[bytes]:
    """A zlib stream inflated slice by slice, never more than `limit + 1` bytes, and up to
    the first corrupt byte (pdfminer keeps that prefix too)."""
    inflater = zlib.decompressobj()
    produced = 0
    for start in range(0, len(data), 1 << 16):
        try:
            piece = inflater.decompress(data[start : start + (1 << 16)], limit + 1 - produced)
        except zlib.error:
            return
        produced += len(piece)
        yield piece
        if produced > limit or inflater.eof:
            return


def _decoded_size(stream: PDFStream, limit: int) -> int:
    """What decoding `stream` would produce, measured without producing more than `limit`
    (+1) bytes of it: Flate and LZW inflate under the bound, ASCII filters only shrink;
    image codecs are not decoded for text extraction and count as they stand."""
    from pdfminer.ascii85 import ascii85decode, asciihexdecode
    from pdfminer.lzw import LZWDecoder
    from pdfminer.pdftypes import (
        LITERALS_ASCII85_DECODE,
        LITERALS_ASCIIHEX_DECODE,
        LITERALS_FLATE_DECODE,
        LITERALS_LZW_DECODE,
    )

    data = stream.rawdata or b""
    if stream.decipher is not None and stream.objid is not None and stream.genno is not None:
        data = stream.decipher(stream.objid, stream.genno, data, stream.attrs)
    size = len(data)
    filters = stream.get_filters()
    for index, (name, _params) in enumerate(filters):
        keep = index + 1 < len(filters)
        if name in LITERALS_FLATE_DECODE:
            size, data = _bounded(_inflated(data, limit), limit, keep)
        elif name in LITERALS_LZW_DECODE:
            size, data = _bounded(LZWDecoder(io.BytesIO(data)).run(), limit, keep)
        elif name in LITERALS_ASCII85_DECODE or name in LITERALS_ASCIIHEX_DECODE:
            data = (ascii85decode if name in LITERALS_ASCII85_DECODE else asciihexdecode)(data)
            size = len(data)
        else:
            break
        if size > limit:
            break
    return size


def _bounded_pdf_parser(fp: BinaryIO, budget: _Budget) -> PDFParser:
    """A pdfminer parser whose streams spend their decoded size on `budget` before decoding.

    pdfminer inflates a stream whole, in memory, and keeps it: a kilobyte of Flate data
    can claim a gigabyte. Streams are measured when first read (content, fonts, object and
    cross-reference streams alike), not when parsed, so images never decoded cost nothing.
    """
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import PDFStream
    from pdfminer.psparser import PSKeyword

    class BoundedStream(PDFStream):
        def decode(self) -> None:
            budget.spend(_decoded_size(self, max(budget.left, 0)))
            super().decode()

    class BoundedParser(PDFParser):
        def do_keyword(self, pos: int, token: PSKeyword) -> None:
            super().do_keyword(pos, token)
            if token is self.KEYWORD_STREAM and self.curstack:
                at, stream = self.curstack[-1]
                if isinstance(stream, PDFStream) and not isinstance(stream, BoundedStream):
                    bounded = BoundedStream(stream.attrs, stream.rawdata or b"", stream.decipher)
                    self.curstack[-1] = (at, bounded)

    return BoundedParser(fp)


def _text_only_device(resources: PDFResourceManager, laparams: LAParams) -> PDFPageAggregator:
    """A layout device that keeps text only and refuses a page drawing absurdly many
    characters: pdfminer builds one object per character, so a 2 KB page could take GiBs."""
    from collections.abc import Sequence

    from pdfminer.converter import PDFPageAggregator
    from pdfminer.pdfcolor import PDFColorSpace
    from pdfminer.pdffont import PDFFont
    from pdfminer.pdfinterp import PDFGraphicState
    from pdfminer.pdfpage import PDFPage
    from pdfminer.utils import Matrix, PathSegment

    class TextOnly(PDFPageAggregator):
        page_chars = 0

        def begin_page(self, page: PDFPage, ctm: Matrix) -> None:
            self.page_chars = 0
            super().begin_page(page, ctm)

        def render_char(
            self,
            matrix: Matrix,
            font: PDFFont,
            fontsize: float,
            scaling: float,
            rise: float,
            cid: int,
            ncs: PDFColorSpace,
            graphicstate: PDFGraphicState,
        ) -> float:
            self.page_chars += 1
            if self.page_chars > _MAX_PAGE_CHARS:
                raise _RefusedError(
                    f"page {self.pageno} draws over {_MAX_PAGE_CHARS:,} characters; "
                    "no readable page holds that many"
                )
            return super().render_char(
                matrix, font, fontsize, scaling, rise, cid, ncs, graphicstate
            )

        def paint_path(
            self,
            gstate: PDFGraphicState,
            stroke: bool,
            fill: bool,
            evenodd: bool,
            path: Sequence[PathSegment],
        ) -> None:
            """Vector graphics carry no text; skipping them saves an object per segment."""

    return TextOnly(resources, laparams=laparams)


def _pdf_lines(filename: str, limits: ParseLimits) -> list[_Line]:
    from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLine
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdftypes import resolve1

    streams = _Budget(
        limits.max_unpacked_bytes,
        f"its streams inflate past the {limits.max_unpacked_bytes / _MIB:,.0f} MiB limit "
        "(RAG_INGEST__MAX_UNPACKED_MB)",
    )
    text = _text_budget(limits)
    over = f"over the {limits.max_pages:,} page limit (RAG_INGEST__MAX_PAGES)"
    lines = []
    with open(filename, "rb") as fp:
        document = PDFDocument(_bounded_pdf_parser(fp, streams))
        tree = resolve1(document.catalog.get("Pages"))
        declared = resolve1(tree.get("Count")) if isinstance(tree, dict) else None
        if isinstance(declared, int) and declared > limits.max_pages:
            raise _RefusedError(f"{declared:,} pages, {over}")  # the cheap count, before any page
        resources = PDFResourceManager(caching=True)
        device = _text_only_device(resources, LAParams())
        interpreter = PDFPageInterpreter(resources, device)
        for page_number, page in enumerate(PDFPage.create_pages(document), 1):
            if page_number > limits.max_pages:  # the declared count may lie
                raise _RefusedError(f"page {page_number:,} is {over}")
            interpreter.process_page(page)
            for box in device.get_result():
                if not isinstance(box, LTTextContainer):
                    continue
                for line in box:
                    if not isinstance(line, LTTextLine):
                        continue
                    line_text = " ".join(unligature(line.get_text()).split())
                    sizes = [round(c.size, 1) for c in line if isinstance(c, LTChar)]
                    if line_text and sizes:
                        text.spend(len(line_text))
                        size = Counter(sizes).most_common(1)[0][0]
                        lines.append(_Line(line_text, size, page_number, line.y1, line.y0, line.x0))
    return lines


_ROW_BAND = 4.0  # points


def _page_furniture(lines: list[_Line]) -> list[_Line]:
    """Lines without running headers and footers, page numbers and table-of-contents
    entries; a table row printed as separate boxes (a term, then its description at the
    same height) becomes one line again: "term: description", or cells joined by " | "."""
    pages: dict[int, list[_Line]] = {}
    for line in lines:
        pages.setdefault(line.page, []).append(line)
    running = running_lines([[line.text for line in page] for page in pages.values()])
    kept: list[_Line] = []
    for page in pages.values():
        edges = {id(line) for line in (*page[:2], *page[-2:])}
        rows: list[list[_Line]] = []
        # Rows by the height of their middle, in bands of a few points: a line is compared
        # with the rows of its band and the two beside it, not with every row of the page
        # (a page of 100,000 one-character lines would otherwise cost 10^10 comparisons).
        bands: dict[int, list[list[_Line]]] = {}
        for line in page:
            if id(line) in edges and (
                is_running_line(line.text, running) or is_page_number(line.text)
            ):
                continue
            if is_toc_line(line.text):
                continue
            band = int((line.top + line.bottom) / 2 // _ROW_BAND)
            nearby = (r for b in (band - 1, band, band + 1) for r in bands.get(b, ()))
            row = next((r for r in nearby if _same_row(r[0], line)), None)
            if row is None:
                row = [line]
                rows.append(row)
                bands.setdefault(band, []).append(row)
            else:
                row.append(line)
        for row in rows:
            kept.append(_join_row(sorted(row, key=lambda line: line.left)))
    kept.sort(key=lambda line: (line.page, -line.top, line.left))
    return kept


def _same_row(a: _Line, b: _Line) -> bool:
    """Two boxes' lines at the same height, the first a short cell (a term, a flag): a
    table row. Long lines side by side are a two-column layout and stay apart."""
    overlap = min(a.top, b.top) - max(a.bottom, b.bottom)
    height = min(a.top - a.bottom, b.top - b.bottom) or 1.0
    left, right = (a, b) if a.left <= b.left else (b, a)
    return (
        overlap >= 0.6 * height
        and abs(a.left - b.left) > 1
        and len(left.text) <= 40
        and left.size == right.size
    )


def _join_row(cells: list[_Line]) -> _Line:
    if len(cells) == 1:
        return cells[0]
    first = cells[0]
    text = (
        f"{first.text}: {cells[1].text}" if len(cells) == 2 else " | ".join(c.text for c in cells)
    )
    return _Line(text, first.size, first.page, first.top, first.bottom, first.left)


def partition_pdf_text_layer(filename: str, limits: ParseLimits | None = None) -> list[Element]:
    """Paragraphs of a PDF's text layer, with page numbers; larger fonts become titles.

    Lines are joined into a paragraph while they share a font size and the gap between
    them is a normal line gap (adaptive: the median gap of the document). Title levels
    come from font size: the largest heading size is depth 0. No OCR: a scanned PDF
    yields no elements.
    """
    lines = _page_furniture(_pdf_lines(filename, limits or ParseLimits()))
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
        gap = previous.bottom - line.top if previous is not None else -1.0
        continues = (
            previous is not None
            and previous.page == line.page
            and previous.size == line.size
            and (
                0 <= gap <= normal_gap * 1.3 + 0.5
                # a heading wrapped over two lines is one heading
                or (
                    line.size in headings
                    and 0 <= gap <= line.size
                    and not previous.text.endswith(".")
                )
            )
            and not line.text.startswith(_BULLETS)
        )
        if continues:
            paragraphs[-1].append(line)
        else:
            paragraphs.append([line])
    elements: list[Element] = []
    for paragraph in paragraphs:
        text = join_lines(line.text for line in paragraph)
        first = paragraph[0]
        if first.size in headings and len(text) < 200:
            elements.append(Element(text, "Title", first.page, headings.index(first.size)))
        elif text.startswith(_BULLETS):
            elements.append(Element(text[2:], "ListItem", first.page))
        else:
            elements.append(Element(text, "NarrativeText", first.page))
    return drop_navigation_sections(elements)


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


def _read(file: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing what is not a regular file (a FIFO would block, a device
    never end) and never reading past `max_bytes`, even if the file grows meanwhile."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens at once
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _RefusedError("not a regular file (a folder, device, pipe or socket)")
            if info.st_size > max_bytes:
                raise _RefusedError(_too_big(info.st_size, max_bytes))
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(info.st_size + 1)  # read(n) reserves n bytes up front
                if len(data) > info.st_size:  # it grew since the stat
                    data += handle.read(max_bytes + 1 - len(data))
        finally:
            os.close(fd)
    except OSError as exc:
        raise _RefusedError(f"cannot read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise _RefusedError(_too_big(len(data), max_bytes))
    return data


def _too_big(size: int, max_bytes: int) -> str:
    return (
        f"{size / _MIB:.1f} MiB is over the {max_bytes / _MIB:.0f} MiB limit "
        "(RAG_INGEST__MAX_FILE_MB)"
    )


class UnstructuredParser:
    """`Parser` on unstructured's per-format partitioners (pdfminer for PDF).

    Whatever fails for a file, in any library, surfaces as an `IngestError` naming the
    file and the reason, so one bad file never stops a batch. Plain data: picklable for
    the spawn-started parse workers.
    """

    def __init__(
        self,
        max_bytes: int = _DEFAULTS.max_bytes,
        *,
        max_unpacked_bytes: int = _DEFAULTS.max_unpacked_bytes,
        max_archive_entries: int = _DEFAULTS.max_archive_entries,
        max_elements: int = _DEFAULTS.max_elements,
        max_text_chars: int = _DEFAULTS.max_text_chars,
        max_pages: int = _DEFAULTS.max_pages,
        max_cells: int = _DEFAULTS.max_cells,
    ) -> None:
        self.limits = ParseLimits(
            max_bytes=max_bytes,
            max_unpacked_bytes=max_unpacked_bytes,
            max_archive_entries=max_archive_entries,
            max_elements=max_elements,
            max_text_chars=max_text_chars,
            max_pages=max_pages,
            max_cells=max_cells,
        )

    def parse(self, path: str, source: str | None = None) -> ParsedDocument:
        try:
            return self._parse(path, source)
        except IngestError:
            raise
        except _RefusedError as exc:
            raise IngestError(clean_text(f"{path}: {exc}")) from exc
        except RecursionError as exc:
            raise IngestError(f"{path}: nested too deeply to parse ({exc})") from exc
        except MemoryError as exc:
            raise IngestError(
                f"{path}: ran out of memory while parsing; lower the RAG_INGEST__MAX_* limits"
            ) from exc
        except Exception as exc:  # third-party parsers raise anything on bad input
            raise IngestError(clean_text(f"{path}: {_reason(exc)}")) from exc

    def _parse(self, path: str, source: str | None) -> ParsedDocument:
        limits, file = self.limits, Path(path)
        name = source or file.name
        if clean_text(name) != name:
            raise _RefusedError("the file name is not valid UTF-8 text (or holds NUL); rename it")
        data = _read(file, limits.max_bytes)
        if not data.strip():
            raise _RefusedError("the file is empty")
        fmt = detect_format(file, data[:4096])
        if fmt in _UNITS:
            _inspect_ooxml(data, fmt, limits)
        if fmt == "eml" and b"\x00" in data[:8192]:  # RFC 5322 forbids NUL; the rest is garbage
            raise _RefusedError("binary content in a mail file")
        text = None
        if fmt in _TEXT_FORMATS:
            text = clean_text(decode_text(file, data))
            if len(text) > limits.max_text_chars:
                raise _RefusedError(_text_budget(limits).refusal)
        budget = _text_budget(limits)
        elements: list[Element] = []
        for raw in _partition(fmt, file, text, limits):
            element = _element(raw)
            if element is None:
                continue
            if len(elements) >= limits.max_elements:
                raise _RefusedError(_too_many_elements(limits))
            budget.spend(len(element.text))
            if clean_text(element.text) != element.text:
                element = replace(element, text=clean_text(element.text))
            elements.append(element)
        elements = tidy_headings(drop_boilerplate(elements))
        if not elements:
            hint = " (a scanned PDF needs OCR)" if fmt == "pdf" else ""
            raise _RefusedError(f"no text could be extracted{hint}")
        titles = [e.text for e in elements if e.kind == "Title"]
        return ParsedDocument(
            source=name,
            title=titles[0] if titles else clean_text(file.stem),
            elements=tuple(elements),
            content_hash=hashlib.sha256(data).hexdigest(),
        )


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    if "Password" in name or "Encrypt" in name:
        return f"the document is encrypted ({name})"
    return f"{name}: {exc}" if str(exc) else name
