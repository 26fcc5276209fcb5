from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import IngestSettings, Settings, StoreSettings


def test_env_vars_reach_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_RETRIEVAL__TOP_K", "7")
    monkeypatch.setenv("RAG_STORE__COLLECTION", "handbook")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.retrieval.top_k, settings.store.collection) == (7, "handbook")


def test_server_backend_without_url_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="RAG_STORE__URL"):
        Settings(_env_file=None, store=StoreSettings(backend="qdrant"))  # type: ignore[call-arg]


def test_production_refuses_the_embedded_store() -> None:
    with pytest.raises(ConfigError, match="RAG_STORE__BACKEND=qdrant"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]


def test_overlap_must_be_smaller_than_chunk() -> None:
    with pytest.raises(ValidationError, match="CHUNK_OVERLAP"):
        IngestSettings(chunk_size=200, chunk_overlap=200)


def test_an_empty_provider_key_means_no_key() -> None:
    from core.settings import LlmSettings

    assert LlmSettings(openai_api_key="", anthropic_api_key="").openai_api_key is None  # type: ignore[arg-type]
