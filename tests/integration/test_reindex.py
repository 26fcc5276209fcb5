"""Blue/green re-indexing: a new pipeline builds beside the old index, then swaps in."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.wiring import AppContext, build_app_context
from core.errors import ConfigError
from core.settings import Settings, get_settings
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.conftest import PROJECT_ROOT
from tests.services import cli_env

pytestmark = pytest.mark.integration


def _corpus(folder: Path) -> Path:
    folder.mkdir()
    for i in range(3):
        (folder / f"doc-{i}.md").write_text(
            f"# Doc {i}\n\n"
            + " ".join(f"Sentence {j} of document {i} about rivers." for j in range(40))
            + "\n"
        )
    return folder


def _ingest(ctx: AppContext, folder: Path, reindex: bool = False) -> str | None:
    report = ctx.documents.ingest(discover(folder, SUPPORTED_SUFFIXES), folder, reindex=reindex)
    assert report.ok
    return report.published


def test_queries_read_the_old_index_until_the_new_one_is_switched_in(
    settings: Settings, tmp_path: Path
) -> None:
    folder = _corpus(tmp_path / "docs")
    blue = build_app_context(settings)
    assert _ingest(blue, folder) == blue.build_collection  # the first build is published
    blue_points = blue.store.count()
    blue.close()

    changed = settings.model_copy(deep=True)
    changed.ingest.chunk_size = 400
    green = build_app_context(changed)
    try:
        assert green.rebuilding
        assert green.query_collection == blue.build_collection
        with pytest.raises(ConfigError, match="rag reindex"):  # never into the live index
            _ingest(green, folder)
        assert _ingest(green, folder, reindex=True) == green.build_collection
        green_points = green.build_store.count()
        assert green_points > blue_points  # smaller chunks: more of them
        assert green.store.count() == blue_points  # queries never saw the half-built index
    finally:
        green.close()

    after = build_app_context(changed)
    try:
        assert not after.rebuilding
        assert after.store.count() == green_points
        assert after.service.search("rivers", top_k=1)
    finally:
        after.close()


def test_ingest_refuses_a_changed_pipeline_and_reindex_switches(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _corpus(tmp_path / "docs")
    for key, value in cli_env(settings, RAG_INGEST__PARSE_WORKERS=1).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    get_settings.cache_clear()
    first = runner.invoke(app, ["ingest", str(folder)])
    assert first.exit_code == 0, first.output
    assert "queries now read" in first.output

    monkeypatch.setenv("RAG_INGEST__CHUNK_SIZE", "400")
    get_settings.cache_clear()
    refused = runner.invoke(app, ["ingest", str(folder)])
    assert refused.exit_code == 1
    assert "rag reindex" in refused.output
    switched = runner.invoke(app, ["reindex", str(folder)])
    get_settings.cache_clear()
    assert switched.exit_code == 0, switched.output
    assert "queries now read" in switched.output


def test_the_demo_has_its_own_collection_and_rebuilds_it_after_an_upgrade(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cli_env(settings, RAG_INGEST__PARSE_WORKERS=1, COLUMNS=400).items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    get_settings.cache_clear()
    first = runner.invoke(app, ["demo", "--docs", str(PROJECT_ROOT / "docs")])
    assert first.exit_code == 0, first.output
    assert "collection 'demo'" in first.output
    monkeypatch.setenv("RAG_INGEST__CHUNK_SIZE", "400")  # an upgrade changed the pipeline
    get_settings.cache_clear()
    again = runner.invoke(app, ["demo", "--docs", str(PROJECT_ROOT / "docs")])
    get_settings.cache_clear()
    assert again.exit_code == 0, again.output
    assert "queries now read" in again.output
    assert "Chunk ids are deterministic" in again.output
    user = build_app_context(settings)  # the user's collection was never touched
    try:
        assert user.store.count() == 0
    finally:
        user.close()
