"""Shared fixtures. Offline defaults are applied before any library loads a model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.offline import apply_offline_defaults

apply_offline_defaults()

from core.settings import ApiSettings, EmbeddingSettings, Settings, StoreSettings  # noqa: E402

if TYPE_CHECKING:
    from tests.llm_server import LocalLlmServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an isolated embedded store under tmp_path, with the real local model."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        store=StoreSettings(backend="edge", path=tmp_path / "qdrant", collection="test"),
        embedding=EmbeddingSettings(models_dir=PROJECT_ROOT / ".models"),
        # TestClient sends `Host: testserver`.
        api=ApiSettings(allowed_hosts=["127.0.0.1", "localhost", "testserver"]),
    )


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus, rendered once per test session from docs/."""
    from ingest import sample_corpus

    target = tmp_path_factory.mktemp("sample-corpus")
    sample_corpus.build(PROJECT_ROOT / "docs", target)
    return target


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLlmServer]:
    """The real local model behind llama.cpp's OpenAI-compatible server, for the session."""
    from tests.llm_server import LocalLlmServer, require_local_llm

    model = require_local_llm()
    server = LocalLlmServer(model, tmp_path_factory.mktemp("llm") / "server.log")
    yield server
    server.stop()
