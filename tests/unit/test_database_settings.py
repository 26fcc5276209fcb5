"""One metadata database: RAG_DATABASE_URL, with RAG_LLM__LEDGER_URL as a deprecated alias
for one release (docs/adr/0026-one-metadata-database.md)."""

from __future__ import annotations

import logging

import pytest

from core.errors import ConfigError
from core.settings import LlmSettings, Settings

PG = "postgresql+psycopg://rag@db:5432/rag"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_the_default_is_none_so_sqlite_in_the_data_folder() -> None:
    assert _settings().database_url is None


def test_the_old_ledger_url_stands_for_the_database_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        settings = _settings(llm=LlmSettings(ledger_url=PG))
    assert settings.database_url == PG
    assert "RAG_LLM__LEDGER_URL is deprecated" in caplog.text
    same = _settings(database_url=PG, llm=LlmSettings(ledger_url=PG))
    assert same.database_url == PG


def test_two_different_databases_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="unset RAG_LLM__LEDGER_URL"):
        _settings(database_url=PG, llm=LlmSettings(ledger_url="sqlite:///elsewhere.db"))
