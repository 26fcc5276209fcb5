"""The HTTP surface through FastAPI's TestClient, on the real embedded stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.wiring import build_app_context
from core.settings import Settings
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover, ingest_paths

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings, sample_corpus: Path) -> Iterator[TestClient]:
    context = build_app_context(settings)
    ingest_paths(
        discover(sample_corpus, SUPPORTED_SUFFIXES),
        context.parser,
        context.chunker,
        context.indexer,
        root=sample_corpus,
    )
    context.close()  # the app opens the shard itself
    with TestClient(create_app(settings)) as client:
        yield client


def test_healthz_reports_the_store(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["store"] == "edge"
    assert body["points"] > 10
    assert body["embedding_model"] == "all-MiniLM-L6-v2-int8"


def test_search_returns_ranked_hits_and_honours_filters(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "reciprocal rank fusion", "top_k": 3})
    assert response.status_code == 200
    hits = response.json()["hits"]
    assert len(hits) == 3
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    filtered = client.post(
        "/v1/search", json={"query": "fusion", "filters": {"source": "0003-chunking.pdf"}}
    ).json()["hits"]
    assert filtered
    assert {h["source"] for h in filtered} == {"0003-chunking.pdf"}


def test_ask_answers_with_citations(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "Which vector store is the default?"})
    body = response.json()
    assert response.status_code == 200
    assert body["found"] is True
    assert body["generator"] == "extractive"
    assert body["citations"][0]["source"] == "0001-embedded-vector-store.html"
    assert "[1]" in body["answer"]


def test_invalid_requests_are_rejected_with_a_reason(client: TestClient) -> None:
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "top_k": 0}).status_code == 422
    blank = client.post("/v1/ask", json={"question": "   "})
    assert blank.status_code == 422
    assert blank.headers["content-type"] == "application/problem+json"
    assert "empty" in blank.json()["detail"]


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/search", "/v1/ask"} <= set(paths)
