"""Every kind of bad file gets a clear reason in the report, and the batch goes on.

The corpus is generated here, one file per failure mode, next to good files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fpdf import FPDF

from api.wiring import build_app_context
from core.settings import Settings
from ingest.parse import SUPPORTED_SUFFIXES, UnstructuredParser
from ingest.pipeline import discover
from tests.services import cli_env

pytestmark = pytest.mark.integration


def _pdf(path: Path, text: str, password: str | None = None) -> None:
    pdf = FPDF()
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def _bad_corpus(folder: Path) -> dict[str, str]:
    """Files and the phrase their failure reason must contain ('' = must succeed)."""
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nA perfectly fine note about oceans.\n")
    (folder / "latin1.txt").write_bytes(
        "Caf\xe9 cr\xe8me br\xfbl\xe9e recipe notes, with d\xe9tails.\n".encode("latin-1") * 3
    )
    (folder / "disguised.txt").write_bytes(b"")  # replaced below by a real PDF
    _pdf(folder / "disguised.txt", "A PDF saved under a .txt name is still parsed as a PDF.")
    _pdf(folder / "real.pdf", "An ordinary PDF document about rivers and lakes.")
    (folder / "empty.md").write_bytes(b"")
    (folder / "blank.txt").write_text("   \n\n  ")
    (folder / "binary.md").write_bytes(bytes(range(256)) * 8)
    # Invalid UTF-8 mixed with control bytes: no encoding reads it as text.
    (folder / "undecodable.txt").write_bytes(
        bytes([0xC3, 0x28, 0x01, 0x02, 0xA0, 0xA1, 0x07, 0x1B]) * 300
    )
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    good_pdf = (folder / "real.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(good_pdf[: len(good_pdf) // 3])
    _pdf(folder / "encrypted.pdf", "Secret text.", password="s3cret")
    (folder / "huge.md").write_text("# Big\n\n" + "word " * 300_000)  # ~1.5 MB
    (folder / "zip.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    return {
        "good.md": "",
        "latin1.txt": "",
        "disguised.txt": "",
        "real.pdf": "",
        "empty.md": "empty",
        "blank.txt": "empty",
        "binary.md": "binary content",
        "undecodable.txt": "cannot decode",
        "corrupt.pdf": "",  # message varies by pdfminer version; any reason is fine
        "truncated.pdf": "",
        "encrypted.pdf": "encrypted",
        "huge.md": "over the 1 MiB limit",
        "zip.docx": "",
    }


def test_each_bad_file_fails_with_its_reason_and_the_rest_is_ingested(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "corpus"
    expected = _bad_corpus(folder)
    settings.ingest.max_file_mb = 1.0
    ctx = build_app_context(settings)
    try:
        report = ctx.documents.ingest(
            discover(folder, SUPPORTED_SUFFIXES),
            folder,
        )
        failed = {failure.source: failure for failure in report.failed}
        must_succeed = {"good.md", "latin1.txt", "disguised.txt", "real.pdf"}
        assert must_succeed.isdisjoint(failed), failed
        assert report.documents == len(must_succeed)
        must_fail = set(expected) - must_succeed
        assert set(failed) == must_fail, failed
        for name, phrase in expected.items():
            if name in failed:
                assert failed[name].path == str(folder / name)
                assert phrase in failed[name].reason, (name, failed[name])
                assert failed[name].path not in failed[name].reason  # said once, by the path
        latin = ctx.service.search("crème brûlée", filters={"source": "latin1.txt"})
        assert "Café crème" in latin[0].chunk.text
    finally:
        ctx.close()


def test_a_path_that_vanishes_mid_run_is_recorded(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "vanish"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nStays.\n")
    (folder / "b.md").write_text("# B\n\nVanishes.\n")
    files = discover(folder, SUPPORTED_SUFFIXES)
    (folder / "b.md").unlink()
    ctx = build_app_context(settings)
    try:
        report = ctx.documents.ingest(files, folder)
    finally:
        ctx.close()
    assert report.documents == 1
    [failure] = report.failed
    assert (failure.path, failure.source) == (str(folder / "b.md"), "b.md")
    assert failure.reason.startswith("cannot read (No such file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_recorded(tmp_path: Path) -> None:
    locked = tmp_path / "locked.md"
    locked.write_text("# Locked\n")
    locked.chmod(0)
    with pytest.raises(Exception, match="Permission denied"):
        UnstructuredParser().parse(str(locked))


def test_the_cli_names_each_failure_once_and_keeps_its_report_format(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import EXIT_PARTIAL, app
    from core.settings import get_settings

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nA perfectly fine note about oceans.\n")
    (folder / "empty.md").write_bytes(b"")
    # COLUMNS: rich would wrap the long temporary paths
    for key, value in cli_env(settings, RAG_INGEST__PARSE_WORKERS=1, COLUMNS=400).items():
        monkeypatch.setenv(key, value)
    report = tmp_path / "report.json"
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke(app, ["ingest", str(folder), "--report", str(report)])
    finally:
        get_settings.cache_clear()
    assert run.exit_code == EXIT_PARTIAL, run.output
    empty = str(folder / "empty.md")
    assert f"failed: {empty}: the file is empty\n" in run.output  # the path once
    written = json.loads(report.read_text())
    assert written["failed"] == {empty: f"{empty}: the file is empty"}  # as before the type
    assert (written["documents"], written["status"]) == (1, "partial")
