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
from ingest.pipeline import discover

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings, sample_corpus: Path) -> Iterator[TestClient]:
    context = build_app_context(settings)
    context.documents.ingest(
        discover(sample_corpus, SUPPORTED_SUFFIXES),
        sample_corpus,
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
    assert body["provenance"]["rung"] == "extractive"
    assert body["provenance"]["grounded"] is True
    assert body["provenance"]["cost_usd"] == 0.0


def test_ask_stream_without_an_llm_sends_the_extractive_answer(client: TestClient) -> None:
    response = client.post("/v1/ask/stream", json={"question": "How are chunk ids made?"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: token\n")
    assert "event: answer\ndata: " in response.text


def test_invalid_requests_are_rejected_with_a_reason(client: TestClient) -> None:
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "top_k": 0}).status_code == 422
    blank = client.post("/v1/ask", json={"question": "   "})
    assert blank.status_code == 422
    assert blank.headers["content-type"] == "application/problem+json"
    assert "empty" in blank.json()["detail"]
    bad_tenant = client.post("/v1/ask", json={"question": "x", "tenant": "a b/../c"})
    assert bad_tenant.status_code == 422
    other_tenant = client.post("/v1/ask", json={"question": "x", "tenant": "globex"})
    assert other_tenant.status_code == 403
    bad_level = client.post("/v1/ask", json={"question": "x", "sensitivity": "secret"})
    assert bad_level.status_code == 422
    assert client.post("/v1/ask/stream", json={"question": "  "}).status_code == 422


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/search", "/v1/ask", "/v1/ask/stream"} <= set(paths)


def _wait_for_job(client: TestClient, url: str, deadline_s: float = 60.0) -> dict[str, object]:
    import time

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        body: dict[str, object] = client.get(url).json()
        if body["state"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job at {url} did not finish")


def test_upload_ingests_in_the_background_and_delete_removes_everywhere(
    client: TestClient,
) -> None:
    note = b"# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.\n"
    accepted = client.post(
        "/v1/documents",
        files=[
            ("files", ("otters.md", note, "text/markdown")),
            ("files", ("empty.txt", b"", "text/plain")),
        ],
    )
    assert accepted.status_code == 202
    job = _wait_for_job(client, accepted.json()["status_url"])
    assert job["state"] == "partial"
    assert job["documents"] == 1
    assert "empty" in job["errors"]["empty.txt"]  # type: ignore[index]
    answer = client.post(
        "/v1/ask",
        json={"question": "Why do sea otters hold hands?", "filters": {"source": "otters.md"}},
    ).json()
    assert answer["citations"][0]["source"] == "otters.md"

    assert client.delete("/v1/documents/otters.md").status_code == 204
    hits = client.post(
        "/v1/search", json={"query": "otters", "filters": {"source": "otters.md"}}
    ).json()["hits"]
    assert hits == []
    assert client.delete("/v1/documents/otters.md").status_code == 404


def test_uploads_are_checked_before_anything_is_queued(client: TestClient) -> None:
    wrong = client.post("/v1/documents", files=[("files", ("x.exe", b"MZ", "application/x"))])
    assert wrong.status_code == 422
    assert "unsupported type" in wrong.json()["detail"]
    assert client.get("/v1/jobs/does-not-exist").status_code == 404


def test_uploads_over_the_limit_are_refused(settings: Settings, sample_corpus: Path) -> None:
    settings.api.max_upload_mb = 0.001
    with TestClient(create_app(settings)) as small:
        response = small.post(
            "/v1/documents", files=[("files", ("big.md", b"# A\n\n" + b"x" * 5000, "text/md"))]
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
