"""Ingest progress moves as chunks are embedded, and the document list survives an old
manifest file."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from api.wiring import build_app_context
from core.settings import IngestSettings, Settings
from core.types import IngestJob, IngestProgress, JobState
from ingest.manifest import SqlManifest
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from metadata.database import sqlite_url, upgrade
from metadata.legacy import import_legacy

pytestmark = pytest.mark.integration


def _long_file(folder: Path, paragraphs: int = 60) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "\n\n".join(
        f"## Part {i}\n\nParagraph {i} explains tide table number {i} and its harbour, "
        f"with enough words to make a chunk of its own about moon phase {i}."
        for i in range(paragraphs)
    )
    path = folder / "tides.md"
    path.write_text(f"# Tide tables\n\n{body}\n")
    return path


def _small_batches(settings: Settings) -> Settings:
    ingest = IngestSettings(batch_size=4, chunk_size=200, chunk_overlap=0)
    return settings.model_copy(update={"ingest": ingest})


def _check_monotonic(events: list[IngestProgress]) -> None:
    for before, after in itertools.pairwise(events):
        assert after.files_done >= before.files_done
        assert after.chunks_total >= before.chunks_total
        assert after.chunks_embedded >= before.chunks_embedded
    assert all(e.chunks_embedded <= e.chunks_total for e in events)
    assert all(e.files_done <= e.files_total for e in events)


def test_progress_counts_chunks_before_the_file_is_done(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    _long_file(folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    ctx = build_app_context(_small_batches(settings))
    events: list[IngestProgress] = []
    try:
        report = ctx.documents.ingest(
            discover(folder, SUPPORTED_SUFFIXES), folder, on_progress=events.append
        )
    finally:
        ctx.close()
    assert report.chunks > 12  # several batches of 4
    assert len(report.failed) == 1
    _check_monotonic(events)
    midway = [e for e in events if 0 < e.chunks_embedded < e.chunks_total]
    assert midway, "no progress was reported between the first and the last chunk"
    assert all(e.files_done < 2 for e in midway)
    last = events[-1]
    assert last == IngestProgress(2, 2, report.chunks, report.chunks)


def test_a_job_reports_progress_and_ends_complete(settings: Settings, tmp_path: Path) -> None:
    path = _long_file(tmp_path / "uploads" / "job1")
    ctx = build_app_context(_small_batches(settings))
    events: list[IngestProgress] = []
    try:
        job = IngestJob("job1", ((str(path), "tides.md"),), "acme")
        status = ctx.documents.run_job(job, events.append)
    finally:
        ctx.close()
    assert status.state is JobState.SUCCEEDED
    _check_monotonic(events)
    assert any(0 < e.chunks_embedded < e.chunks_total for e in events)
    assert status.progress == IngestProgress(1, 1, status.chunks, status.chunks)


def test_an_old_manifest_file_is_copied_in_and_listed(tmp_path: Path) -> None:
    """A manifest file written before titles and groups were kept: copied into the
    metadata database at start (metadata.legacy) and listed; its rows of unknown readers
    are shown to admins only."""
    with sqlite3.connect(tmp_path / "manifest.sqlite3") as db:
        db.execute(
            "CREATE TABLE documents (collection TEXT NOT NULL, tenant TEXT NOT NULL, "
            "source TEXT NOT NULL, content_hash TEXT NOT NULL, chunk_ids TEXT NOT NULL, "
            "state TEXT NOT NULL CHECK (state IN ('pending', 'done')), updated_at TEXT NOT NULL,"
            " PRIMARY KEY (collection, tenant, source))"
        )
        db.execute(
            "INSERT INTO documents VALUES ('c', 'acme', 'old.md', 'h', '[\"a\", \"b\"]', 'done', "
            "'2026-01-02T03:04:05+00:00')"
        )
    url = sqlite_url(tmp_path)
    upgrade(url)
    assert import_legacy(url, tmp_path) == {"manifest.sqlite3": 1}
    manifest = SqlManifest(url, "c")
    try:
        manifest.commit("acme", "new.md", "h2", ["x"], "New notes", ["legal"])
        everything, total = manifest.page("acme", None, None, 10)
        reader, reader_total = manifest.page("acme", ["legal"], None, 10)
        outsider, _ = manifest.page("acme", ["hr"], None, 10)
        assert manifest.get("acme", "old.md") is not None  # the old row is intact
    finally:
        manifest.close()
    assert [(r.source, r.title, r.chunks, r.access_groups) for r in everything] == [
        ("new.md", "New notes", 1, ("legal",)),
        ("old.md", None, 2, None),
    ]
    assert everything[1].updated_at == "2026-01-02T03:04:05+00:00"
    assert total == 2
    assert ([r.source for r in reader], reader_total) == (["new.md"], 1)
    assert outsider == []
