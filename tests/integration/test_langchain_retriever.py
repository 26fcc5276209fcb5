"""The LangChain retrievers pass LangChain's standard retriever suite: in-process over
`RagService`, and over HTTP against the real app under uvicorn. Both keep the caller's
scope: another tenant's view holds none of these documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import SecretStr

from api.wiring import AppContext, build_app_context
from core.errors import AuthenticationError
from core.settings import ApiSettings, EmbeddingSettings, Settings, StoreSettings
from core.types import RequestContext, Role
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from retrieval.langchain_retriever import METADATA_KEYS, RagHttpRetriever, RagRetriever
from tests.conftest import PROJECT_ROOT
from tests.services import keys_settings, live_server

pytestmark = pytest.mark.integration


QUERY = "How are chunk ids made deterministic?"


def _settings(folder: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=folder / "data",
        store=StoreSettings(backend="edge", path=folder / "qdrant", collection="lc"),
        embedding=EmbeddingSettings(models_dir=PROJECT_ROOT / ".models"),
        api=ApiSettings(allowed_hosts=["127.0.0.1"]),
    )


@pytest.fixture(scope="module")
def in_process(
    tmp_path_factory: pytest.TempPathFactory, sample_corpus: Path
) -> Iterator[AppContext]:
    """The sample corpus in an embedded store, opened in this process."""
    context = build_app_context(_settings(tmp_path_factory.mktemp("lc-local")))
    context.documents.ingest(discover(sample_corpus, SUPPORTED_SUFFIXES), sample_corpus)
    yield context
    context.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_corpus: Path) -> Iterator[str]:
    """The sample corpus behind the real app; its base URL (auth mode `none`, loopback)."""
    with live_server(_settings(tmp_path_factory.mktemp("lc-http")), ingest=sample_corpus) as url:
        yield url


class TestRagRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _context(self, in_process: AppContext) -> None:
        self.context = in_process

    @property
    def retriever_constructor(self) -> type[RagRetriever]:
        return RagRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"service": self.context.service, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


class TestRagHttpRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _server(self, server: str) -> None:
        self.url = server

    @property
    def retriever_constructor(self) -> type[RagHttpRetriever]:
        return RagHttpRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"base_url": self.url, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


def test_both_transports_return_the_same_documents(in_process: AppContext, server: str) -> None:
    local = RagRetriever(service=in_process.service, k=4).invoke(QUERY)
    remote = RagHttpRetriever(base_url=server, k=4).invoke(QUERY)
    # Same corpus, same ranking; equal fusion scores may come in either order.
    assert [d.metadata["score"] for d in local] == pytest.approx(
        [d.metadata["score"] for d in remote]
    )
    remote_scores = {d.metadata["chunk_id"]: d.metadata["score"] for d in remote}
    assert local[0].metadata["chunk_id"] == remote[0].metadata["chunk_id"]
    for doc in local:
        assert set(doc.metadata) == set(METADATA_KEYS)
        assert doc.page_content
        assert doc.id == doc.metadata["chunk_id"]
        if doc.id in remote_scores:
            assert remote_scores[doc.id] == pytest.approx(doc.metadata["score"])
    assert local[0].metadata["source"].startswith("0003-chunking")  # the chunking ADR


def test_in_process_scope_is_the_context(in_process: AppContext) -> None:
    other = RequestContext(tenant="globex")
    assert RagRetriever(service=in_process.service, context=other).invoke(QUERY) == []


def test_http_key_scopes_and_a_bad_key_is_refused(tmp_path: Path) -> None:
    settings = keys_settings(tmp_path, "lc", requests_per_minute=10_000).model_copy(
        update={"api": ApiSettings(allowed_hosts=["127.0.0.1"])}
    )
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "widgets.md").write_text("# Widgets\n\nThe widget line grew by nine percent.\n")
    context = build_app_context(settings)
    context.documents.ingest(discover(folder, SUPPORTED_SUFFIXES), folder, "acme")
    _, acme = context.keys.create("acme", Role.READER, [], None)
    _, globex = context.keys.create("globex", Role.READER, [], None)
    context.close()
    with live_server(settings) as url:
        mine = RagHttpRetriever(base_url=url, api_key=SecretStr(acme)).invoke("widget line")
        theirs = RagHttpRetriever(base_url=url, api_key=SecretStr(globex)).invoke("widget line")
        with pytest.raises(AuthenticationError, match="401"):
            RagHttpRetriever(base_url=url, api_key=SecretStr("nope")).invoke("widget line")
    assert [d.metadata["source"] for d in mine] == ["widgets.md"]
    assert theirs == []
