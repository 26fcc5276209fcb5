"""Incremental, idempotent and crash-safe ingestion against the real embedded engine."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.wiring import AppContext, build_app_context
from core.errors import InvalidFilterError
from core.settings import Settings
from core.types import RequestContext
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import IngestReport, discover
from tests.conftest import PROJECT_ROOT
from tests.services import subprocess_env

pytestmark = pytest.mark.integration


def _write_corpus(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nThe first section of note {i} talks about topic {i % 7}.\n\n"
            f"## Details\n\nNote {i} has details about item {i * 3} and item {i * 5}.\n\n"
            f"## Summary\n\nIn short, note {i} is number {i}.\n"
        )


def _ingest(ctx: AppContext, folder: Path, prune: bool = False) -> IngestReport:
    return ctx.documents.ingest(
        discover(folder, SUPPORTED_SUFFIXES),
        folder,
        prune=prune,
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    context = build_app_context(settings)
    yield context
    context.close()


def test_unchanged_files_are_skipped_changed_ones_replaced_removed_ones_pruned(
    ctx: AppContext, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    _write_corpus(folder, 4)
    first = _ingest(ctx, folder)
    assert (first.documents, first.skipped) == (4, 0)
    points = ctx.store.count()

    again = _ingest(ctx, folder)
    assert (again.documents, again.skipped, ctx.store.count()) == (0, 4, points)

    (folder / "note-001.md").write_text("# Note 1\n\nRewritten: only one short section now.\n")
    changed = _ingest(ctx, folder)
    assert (changed.documents, changed.skipped) == (1, 3)
    assert ctx.store.count({"source": "note-001.md"}) == 1

    (folder / "note-002.md").unlink()
    kept = _ingest(ctx, folder)  # without --prune, removed files keep their chunks
    assert kept.pruned == []
    assert ctx.store.count({"source": "note-002.md"}) > 0
    pruned = _ingest(ctx, folder, prune=True)
    assert pruned.pruned == ["note-002.md"]
    assert ctx.store.count({"source": "note-002.md"}) == 0
    assert [r.source for r in ctx.manifest.sources("default")] == [
        "note-000.md",
        "note-001.md",
        "note-003.md",
    ]


def test_a_bad_file_is_reported_and_the_batch_goes_on(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    _write_corpus(folder, 2)
    (folder / "empty.md").write_text("")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    report = _ingest(ctx, folder)
    assert report.documents == 2
    failed = {failure.source: failure for failure in report.failed}
    assert set(failed) == {"empty.md", "broken.pdf"}
    assert failed["empty.md"].path == str(folder / "empty.md")
    assert failed["empty.md"].reason == "the file is empty"


def test_kill_9_mid_batch_then_rerun_completes_without_duplicates_or_orphans(
    settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "big"
    _write_corpus(folder, 80)
    env = subprocess_env(settings)
    command = [sys.executable, "-u", "-m", "api.cli", "ingest", str(folder)]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    done = 0
    for line in process.stdout:
        done += line.strip().endswith("chunks") and "note-" in line
        if done == 25:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    rerun = subprocess.run(
        [*command, "--report", str(tmp_path / "r.json")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "unchanged" in rerun.stdout

    ctx = build_app_context(settings)
    try:
        expected = {
            path.name: len(ctx.chunker.chunk(ctx.parser.parse(str(path), path.name)))
            for path in sorted(folder.iterdir())
        }
        assert ctx.store.count() == sum(expected.values())
        for source, chunks in expected.items():
            assert ctx.store.count({"source": source}) == chunks, source
        assert {r.state for r in ctx.manifest.sources("default")} == {"done"}
        assert len(ctx.manifest.sources("default")) == 80
    finally:
        ctx.close()


def test_a_parse_pool_gives_the_same_index_as_in_process_parsing(
    ctx: AppContext, tmp_path: Path
) -> None:
    folder = tmp_path / "pool"
    _write_corpus(folder, 12)
    report = ctx.documents.ingest(
        discover(folder, SUPPORTED_SUFFIXES),
        folder,
        workers=2,
    )
    expected = sum(
        len(ctx.chunker.chunk(ctx.parser.parse(str(p), p.name))) for p in sorted(folder.iterdir())
    )
    assert (report.documents, report.chunks) == (12, expected)
    assert ctx.store.count() == expected


def test_chunks_carry_provenance_and_access_metadata(ctx: AppContext, tmp_path: Path) -> None:
    folder = tmp_path / "meta"
    _write_corpus(folder, 2)
    ctx.documents.ingest(
        discover(folder, SUPPORTED_SUFFIXES), folder, tenant="acme", access_groups=["legal", "hr"]
    )
    acme = RequestContext("acme", ("hr", "finance"))
    hit = ctx.service.search("details about item", top_k=1, context=acme)[0]
    assert (hit.chunk.tenant, hit.chunk.access_groups) == ("acme", ("hr", "legal"))
    meta = hit.chunk.metadata
    assert meta["element_types"] == ["NarrativeText"]
    assert str(meta["pipeline_version"]).startswith("embed=all-MiniLM-L6-v2-int8;")
    assert str(meta["ingested_at"]).startswith("20")
    assert ctx.store.count({"tenant": "acme"}) == ctx.store.count()
    # Scoped in the engine: another group, the default tenant, or no groups see nothing.
    assert not ctx.service.search("details", context=RequestContext("acme", ("finance",)))
    assert not ctx.service.search("details", context=RequestContext("acme"))
    assert not ctx.service.search("details")
    with pytest.raises(InvalidFilterError):  # the scope is the server's, never a filter
        ctx.service.search("details", filters={"access_groups": ["hr"]}, context=acme)
