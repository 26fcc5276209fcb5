"""Hostile files: each class is refused with a reason naming the file, at a bounded cost.

Every file is generated here, small on disk: a zip bomb is a few hundred KB that claims
hundreds of MB, a PDF bomb a few KB that would draw a million characters.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from core.errors import IngestError
from ingest.parse import SUPPORTED_SUFFIXES, UnstructuredParser, clean_text, decode_text
from ingest.pipeline import discover

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_WORDML = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(path: Path, document_xml: bytes) -> Path:
    """A real DOCX (python-docx's template) with its main part replaced."""
    import io

    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    with (
        zipfile.ZipFile(template) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            main = entry.filename == "word/document.xml"
            target.writestr(entry.filename, document_xml if main else source.read(entry))
    return path


def _paragraphs(count: int, prolog: bytes = b"") -> bytes:
    body = b"".join(b"<w:p><w:r><w:t>paragraph %d</w:t></w:r></w:p>" % i for i in range(count))
    return prolog + b"<w:document " + _WORDML + b"><w:body>" + body + b"</w:body></w:document>"


def _zip_bomb(path: Path, inflated_mib: int) -> Path:
    """A DOCX-looking zip whose main part inflates to `inflated_mib` MiB of zeros, written
    streamed so the test never holds it."""
    zeros = b"\0" * 2**20
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as part,
    ):
        for _ in range(inflated_mib):
            part.write(zeros)
    return path


def _pdf(path: Path, contents: list[bytes], declared_pages: int | None = None) -> Path:
    """A minimal PDF: one page per content stream (Flate-compressed), Helvetica, an xref."""
    pages = len(contents)
    first_page, font = 3, 3 + 2 * pages
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(pages))
    count = pages if declared_pages is None else declared_pages
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
    ]
    for i, content in enumerate(contents):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
            f"{first_page + 2 * i + 1} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        packed = zlib.compress(content, 9)
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
            + packed
            + b"\nendstream"
        )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def _text_page(text: str) -> bytes:
    return b"BT /F1 12 Tf 72 700 Td (" + text.encode("latin-1") + b") Tj ET"


def _refused(path: Path, *phrases: str, **limits: int) -> str:
    with pytest.raises(IngestError) as caught:
        UnstructuredParser(**limits).parse(str(path))
    message = str(caught.value)
    assert str(path) in message, message
    for phrase in phrases:
        assert phrase in message, message
    return message


def _peak_extra_mib(path: Path, warm_up: Path | None = None, **limits: int) -> tuple[float, str]:
    """Peak resident memory a parse adds, measured in a fresh interpreter (after imports
    and an optional warm-up parse) since `ru_maxrss` only ever grows."""
    warm = str(warm_up) if warm_up else ""
    code = textwrap.dedent(
        f"""
        import resource
        from core.errors import IngestError
        from ingest.parse import UnstructuredParser
        parser = UnstructuredParser(**{limits!r})
        if {warm!r}:
            parser.parse({warm!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            outcome = "parsed %d elements" % len(parser.parse({str(path)!r}).elements)
        except IngestError as exc:
            outcome = str(exc)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print("RESULT", (after - before) / 1024, outcome)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    result = next(line for line in run.stdout.splitlines() if line.startswith("RESULT "))
    _, extra, outcome = result.split(" ", 2)
    return float(extra), outcome


# --- text: decoding and sanitising ---------------------------------------------------------


def test_utf16_with_an_odd_byte_count_keeps_what_it_holds(tmp_path: Path) -> None:
    text = "Tide tables for the northern harbour"
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"\xff\xfe" + text.encode("utf-16-le") + b"\x41")  # a dangling byte
    assert decode_text(odd, odd.read_bytes()) == text
    document = UnstructuredParser().parse(str(odd))
    assert document.elements[0].text == text
    # A pair cut in half at the end is a dangling unit too; big-endian and UTF-32 alike.
    assert decode_text(odd, "ab\U0001f30a".encode("utf-16")[:-2]) == "ab"
    assert decode_text(odd, "\ufeffab".encode("utf-16-be") + b"\x00") == "ab"
    assert decode_text(odd, "abc".encode("utf-32") + b"\x00\x00") == "abc"


def test_lone_surrogates_in_utf16_are_refused_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "surrogate.txt"
    broken.write_bytes(
        b"\xff\xfe" + "before ".encode("utf-16-le") + b"\x00\xd8" + "after".encode("utf-16-le")
    )
    _refused(broken, "invalid UTF-16", "surrogate")


def test_extracted_text_never_carries_nul_or_lone_surrogates(tmp_path: Path) -> None:
    escaped = tmp_path / "escaped.json"
    escaped.write_text('{"note": "tide\\ud800 table\\u0000s"}')  # valid JSON escapes
    late_nul = tmp_path / "late-nul.txt"
    late_nul.write_bytes(b"Harbour notes.\n" * 1000 + b"Low\x00 tide at noon.\n")
    for path in (escaped, late_nul):
        for element in UnstructuredParser().parse(str(path)).elements:
            assert "\x00" not in element.text
            element.text.encode("utf-8")  # raises on any lone surrogate
    note = UnstructuredParser().parse(str(escaped)).elements[0].text
    assert note == "note: tide\ufffd tables"
    assert clean_text("a\x00b\udc80c") == "ab\ufffdc"


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_garbage_under_any_name_parses_or_fails_with_a_reason(tmp_path: Path, suffix: str) -> None:
    """Whatever a library raises on bad input comes back as an `IngestError` naming the file."""
    noise = bytes(range(256)) * 2
    real = _docx(tmp_path / "real.docx", _paragraphs(20)).read_bytes()
    payloads = [
        b"PK\x03\x04" + noise,  # a zip header over noise
        b"%PDF-1.7\n" + noise,  # a PDF header over noise
        real[: len(real) // 2],  # a truncated office file
        b'{"a": [<html><p>\xff\xfe&#0;&#xD800;</p>,\n,,"\x85' * 20,  # structure, broken
    ]
    for number, payload in enumerate(payloads):
        path = tmp_path / f"garbage{number}{suffix}"
        path.write_bytes(payload)
        try:
            document = UnstructuredParser().parse(str(path))
        except IngestError as exc:
            reason = str(exc)
        else:
            reason = path.name
            for element in document.elements:
                element.text.encode("utf-8")
                assert "\x00" not in element.text
        assert path.name in reason


def test_a_mail_with_nul_bytes_is_binary(tmp_path: Path) -> None:
    mail = tmp_path / "noise.eml"
    mail.write_bytes(b"From: a@example.com\n\n" + bytes(range(256)) * 8)
    _refused(mail, "binary content")


def test_mail_attachments_are_not_partitioned(tmp_path: Path) -> None:
    """An attached DOCX bomb is never opened: attachments are ingested as files or not at all."""
    import base64

    bomb = base64.encodebytes(_zip_bomb(tmp_path / "bomb.docx", 300).read_bytes()).decode()
    mail = tmp_path / "carrier.eml"
    mail.write_text(
        "From: a@example.com\nTo: b@example.com\nSubject: Harbour schedule\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe ferry leaves at nine.\n"
        "--b\nContent-Type: application/vnd.openxmlformats-officedocument"
        ".wordprocessingml.document\nContent-Disposition: attachment; filename=bomb.docx\n"
        f"Content-Transfer-Encoding: base64\n\n{bomb}\n--b--\n"
    )
    started = time.monotonic()
    document = UnstructuredParser().parse(str(mail))
    assert time.monotonic() - started < 30
    assert any("ferry leaves at nine" in e.text for e in document.elements)


def test_deeply_nested_mime_is_refused(tmp_path: Path) -> None:
    depth = 3000
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    mail = tmp_path / "nested.eml"
    mail.write_text(
        "From: a@example.com\nSubject: nested\nMIME-Version: 1.0\n"
        + opening
        + "Content-Type: text/plain\n\nhello\n"
        + closing
    )
    _refused(mail, "nested too deeply")


# --- office files: the zip is read, never extracted ---------------------------------------


def test_a_docx_bomb_is_refused_from_its_central_directory(tmp_path: Path) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.docx", 300)
    assert bomb.stat().st_size < 2**20
    started = time.monotonic()
    tracemalloc.start()
    try:
        _refused(bomb, "unpacks to 300 MiB", "200 MiB limit", "RAG_INGEST__MAX_UNPACKED_MB")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MiB allocated for a 300 KB file"
    assert time.monotonic() - started < 5


def test_the_docx_bomb_costs_little_memory(tmp_path: Path) -> None:
    extra_mib, outcome = _peak_extra_mib(_zip_bomb(tmp_path / "bomb.docx", 300))
    assert "RAG_INGEST__MAX_UNPACKED_MB" in outcome
    assert extra_mib < 100, f"parsing the bomb took {extra_mib:.0f} MiB more"


def test_an_absurd_compression_ratio_is_refused_under_the_size_limit(tmp_path: Path) -> None:
    bomb = _zip_bomb(tmp_path / "ratio.docx", 150)
    _refused(bomb, "word/document.xml inflates", "zip bomb")


def test_too_many_zip_entries_are_refused(tmp_path: Path) -> None:
    crowded = tmp_path / "crowded.pptx"
    with zipfile.ZipFile(crowded, "w") as archive:
        for i in range(300):
            archive.writestr(f"ppt/slides/slide{i}.xml", b"<x/>")
    _refused(crowded, "300 entries", "RAG_INGEST__MAX_ARCHIVE_ENTRIES", max_archive_entries=200)


def test_a_docx_with_too_many_paragraphs_is_refused_before_partitioning(tmp_path: Path) -> None:
    many = _docx(tmp_path / "many.docx", _paragraphs(5000))
    started = time.monotonic()
    _refused(many, "5,000 paragraphs", "RAG_INGEST__MAX_ELEMENTS", max_elements=1000)
    assert time.monotonic() - started < 5  # unstructured takes ~4 ms a paragraph


def test_a_workbook_with_too_many_cells_is_refused(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    for row in range(50):
        book.active.append([f"r{row}c{col}" for col in range(10)])
    book.save(tmp_path / "wide.xlsx")
    _refused(tmp_path / "wide.xlsx", "500 cells", "RAG_INGEST__MAX_CELLS", max_cells=400)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_dtd_in_an_office_part_is_refused(tmp_path: Path, encoding: str) -> None:
    """Billion laughs: the libraries do not expand entities, and the DTD never reaches them."""
    laughs = '<!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;">]>'
    xml = (f'<?xml version="1.0" encoding="{encoding}"?>' + laughs).encode(encoding)
    xml += _paragraphs(1).decode().encode(encoding)[2 if encoding == "utf-16" else 0 :]
    _refused(_docx(tmp_path / "laughs.docx", xml), "declares a DTD")


# --- PDF: pages, streams and characters are bounded -----------------------------------------


def test_a_pdf_with_too_many_pages_is_refused(tmp_path: Path) -> None:
    pages = [_text_page(f"page {i}") for i in range(30)]
    _refused(_pdf(tmp_path / "long.pdf", pages), "30 pages", "RAG_INGEST__MAX_PAGES", max_pages=10)
    # A page tree that understates its count is caught while walking it.
    liar = _pdf(tmp_path / "liar.pdf", pages, declared_pages=1)
    _refused(liar, "page 11 is over the 10 page limit", max_pages=10)


def test_a_pdf_page_drawing_a_million_characters_is_refused(tmp_path: Path) -> None:
    """1.6 KB on disk; pdfminer would hold ~0.7 GiB of character objects for it."""
    bomb = _pdf(tmp_path / "chars.pdf", [_text_page("A" * 1_000_000)])
    assert bomb.stat().st_size < 4096
    _refused(bomb, "page 1 draws over 100,000 characters")


def test_a_pdf_stream_inflating_past_the_limit_is_refused(tmp_path: Path) -> None:
    bomb = _pdf(tmp_path / "flate.pdf", [_text_page("hello") + b" " * (8 * 2**20)])
    _refused(bomb, "streams inflate past the 4 MiB limit", max_unpacked_bytes=4 * 2**20)
    document = UnstructuredParser().parse(str(bomb))  # under the default limit it parses
    assert document.elements[0].text == "hello"


# --- data formats ----------------------------------------------------------------------------


def test_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    abyss = tmp_path / "abyss.json"
    abyss.write_text("[" * 100_000 + "]" * 100_000)  # past Python's recursion limit
    _refused(abyss, "nested deeper than 100 levels")
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' * 150 + "1" + "}" * 150)  # within it, past ours
    _refused(deep, "nested deeper than 100 levels")


def test_json_flattening_cannot_amplify_a_small_file(tmp_path: Path) -> None:
    """A 1 MB key over 100,000 leaves would flatten to 100 GB of `key.i: value` lines."""
    amplifier = tmp_path / "amplifier.json"
    amplifier.write_text(json.dumps({"k" * 1_000_000: list(range(100_000))}))
    started = time.monotonic()
    _refused(amplifier, "limit on extracted text", "RAG_INGEST__MAX_TEXT_MB")
    assert time.monotonic() - started < 10


def test_jsonl_with_too_many_records_is_refused(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"event": "tick"}\n' * 2000)
    _refused(records, "element limit", "RAG_INGEST__MAX_ELEMENTS", max_elements=1000)


def test_a_wide_single_line_csv_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSV_MAX_CELLS", "10000")  # unstructured's own bound, read per call
    wide = tmp_path / "wide.csv"
    wide.write_text("," * 20_000 + "\n")
    _refused(wide, "CSV_MAX_CELLS")


def test_one_huge_paragraph_costs_bounded_memory(tmp_path: Path) -> None:
    """unstructured's spaCy heuristics took ~3 GiB and ~100 s on one 1 MB paragraph."""
    warm_up = tmp_path / "warm.txt"
    warm_up.write_text("A short paragraph that loads the libraries.\n")
    endless = tmp_path / "endless.txt"
    endless.write_text("word " * 400_000)  # 2 MB, no line break
    started = time.monotonic()
    extra_mib, outcome = _peak_extra_mib(endless, warm_up=warm_up)
    assert outcome == "parsed 1 elements"
    assert extra_mib < 400, f"one paragraph took {extra_mib:.0f} MiB more"
    assert time.monotonic() - started < 60


def test_text_over_the_text_limit_is_refused(tmp_path: Path) -> None:
    long = tmp_path / "long.md"
    long.write_text("# Long\n\n" + "word " * 100_000)
    _refused(long, "limit on extracted text", max_text_chars=100_000)


# --- files that are not files ---------------------------------------------------------------


def test_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    _refused(fifo, "not a regular file")
    folder = tmp_path / "folder.md"
    folder.mkdir()
    _refused(folder, "not a regular file")


def test_a_name_that_is_not_utf8_is_refused_and_skipped(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(raw, "wb") as handle:
        handle.write(b"Latin-1 named notes.\n")
    (tmp_path / "fine.txt").write_text("Fine notes.\n")
    name = os.fsdecode(raw)
    with pytest.raises(IngestError, match="not valid UTF-8"):
        UnstructuredParser().parse(name)
    assert discover(tmp_path, SUPPORTED_SUFFIXES) == [tmp_path / "fine.txt"]


# --- discovery never follows links -----------------------------------------------------------


def test_discover_skips_symlinks_to_files_and_folders(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:x:0:0\n")
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n")
    (root / "sub" / "b.txt").write_text("B\n")
    (root / "passwd.txt").symlink_to(outside / "secret.txt")
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "alias.md").symlink_to(root / "a.md")  # inside, still not followed
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.md").symlink_to(tmp_path / "missing.md")
    with caplog.at_level(logging.WARNING, logger="ingest.pipeline"):
        found = discover(root, SUPPORTED_SUFFIXES)
    assert found == [root / "a.md", root / "sub" / "b.txt"]
    skipped = " ".join(r.getMessage() for r in caplog.records)
    for link in ("passwd.txt", "linked-dir", "alias.md", "loop", "dangling.md"):
        assert link in skipped, skipped
    assert discover(root / "a.md", SUPPORTED_SUFFIXES) == [root / "a.md"]
    assert all(p.resolve().is_relative_to(root.resolve()) for p in found)


def test_discover_through_a_linked_root_stays_inside_it(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.md").write_text("# A\n")
    linked = tmp_path / "linked"
    linked.symlink_to(real, target_is_directory=True)  # the root itself may be a link
    assert discover(linked, SUPPORTED_SUFFIXES) == [linked / "a.md"]


# --- a batch: one bad file never stops the others --------------------------------------------


def test_a_hostile_batch_fails_file_by_file_and_the_rest_parses(tmp_path: Path) -> None:
    root = tmp_path / "batch"
    root.mkdir()
    (root / "good.md").write_text("# Harbour\n\nThe ferry leaves at nine every morning.\n")
    _docx(root / "good.docx", _paragraphs(3))
    _zip_bomb(root / "bomb.docx", 300)
    (root / "odd.txt").write_bytes(b"\xff\xfe" + "Odd but fine".encode("utf-16-le") + b"!")
    (root / "surrogate.txt").write_bytes(b"\xff\xfe\x00\xd8x\x00")
    (root / "abyss.json").write_text("[" * 100_000 + "]" * 100_000)
    _pdf(root / "chars.pdf", [_text_page("A" * 200_000)])
    (root / "passwd.txt").symlink_to("/etc/passwd")
    expected = {
        "bomb.docx": "MAX_UNPACKED_MB",
        "surrogate.txt": "invalid UTF-16",
        "abyss.json": "nested deeper",
        "chars.pdf": "100,000 characters",
    }
    parser = UnstructuredParser()
    parsed, failed = {}, {}
    for path in discover(root, SUPPORTED_SUFFIXES):
        try:
            parsed[path.name] = parser.parse(str(path), path.name)
        except IngestError as exc:  # the pipeline records exactly this, and goes on
            failed[path.name] = str(exc)
    assert set(parsed) == {"good.md", "good.docx", "odd.txt"}
    assert parsed["odd.txt"].elements[0].text == "Odd but fine"
    assert set(failed) == set(expected)
    for name, phrase in expected.items():
        assert name in failed[name]
        assert phrase in failed[name], failed[name]


def test_the_parser_and_its_refusals_cross_into_spawned_workers(tmp_path: Path) -> None:
    """Parse workers are spawn-started: the parser travels pickled, its errors come back."""
    parser = UnstructuredParser(50 * 2**20, max_pages=7)
    assert pickle.loads(pickle.dumps(parser)).limits == parser.limits
    assert UnstructuredParser(1234).limits.max_bytes == 1234  # positional, as before
    abyss = tmp_path / "abyss.json"
    abyss.write_text("[" * 100_000 + "]" * 100_000)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        error = pool.submit(parser.parse, str(abyss)).exception(timeout=120)
    assert isinstance(error, IngestError)
    assert "nested deeper" in str(error)
