from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import IngestError, UnsupportedFormatError
from ingest.parse import decode_text, detect_format


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("notes.txt", b"%PDF-1.7 ...", "pdf"),
        ("page.md", b"  <!DOCTYPE html><html>", "html"),
        ("report.bin.docx", b"PK\x03\x04....word/document.xml", "docx"),
        ("readme.markdown", b"# Title", "md"),
        ("a.HTM", b"<p>fragment</p>", "html"),
    ],
)
def test_format_comes_from_content_before_extension(name: str, head: bytes, expected: str) -> None:
    assert detect_format(Path(name), head) == expected


def test_unknown_formats_and_foreign_zips_are_refused() -> None:
    with pytest.raises(UnsupportedFormatError, match="supported"):
        detect_format(Path("image.png"), b"\x89PNG")
    with pytest.raises(UnsupportedFormatError, match="not a DOCX"):
        detect_format(Path("archive.md"), b"PK\x03\x04 some.zip")


def test_decoding_handles_utf8_bom_utf16_and_windows_1252() -> None:
    path = Path("x.txt")
    assert decode_text(path, "\ufeffnaïve".encode()) == "naïve"
    assert decode_text(path, "naïve café".encode("utf-16")) == "naïve café"
    assert decode_text(path, "Crème brûlée for the café".encode("cp1252")) == (
        "Crème brûlée for the café"
    )


def test_east_asian_legacy_text_is_not_read_as_windows_1252() -> None:
    text = "한국어 문서의 내용입니다. 검색 증강 생성 시스템에 대한 설명입니다." * 5
    decoded = decode_text(Path("ko.txt"), text.encode("cp949"))
    assert decoded == text


def test_binary_and_undecodable_bytes_are_refused() -> None:
    with pytest.raises(IngestError, match="binary"):
        decode_text(Path("b.md"), b"abc\x00\x01\x02")
    with pytest.raises(IngestError, match="cannot decode"):
        decode_text(Path("u.txt"), bytes([0xC3, 0x28, 0x01, 0x02, 0xA0, 0xA1, 0x07, 0x1B]) * 50)
