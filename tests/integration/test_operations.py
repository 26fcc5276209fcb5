"""What an operator's tools see: readiness, offline API docs, the SSE stream's framing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from api import health
from api.app import create_app
from core.errors import StoreError
from core.settings import LlmSettings, Settings
from tests.llm_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


class _BrokenStore:
    """Answers nothing: every call fails like a store that went away."""

    def count(self) -> int:
        raise StoreError("shard folder vanished: /secret/path")


def test_readyz_reports_each_part_and_is_ready_on_the_embedded_default(
    client: TestClient,
) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"store", "queue", "disk"}
    assert all(c["ok"] for c in body["checks"].values())
    assert [name for name, c in body["checks"].items() if c["required"]] == ["queue", "store"]


def test_readyz_is_503_naming_the_part_that_is_down_without_its_details(
    client: TestClient,
) -> None:
    context = client.app.state.context  # type: ignore[attr-defined]
    healthy = context.store
    context.__dict__["store"] = _BrokenStore()
    try:
        response = client.get("/readyz")
    finally:
        context.__dict__["store"] = healthy
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["store"] == {
        "ok": False,
        "latency_ms": body["checks"]["store"]["latency_ms"],
        "required": True,
        "error": "StoreError",
    }
    assert "secret" not in response.text
    assert response.headers.get("Retry-After") is None  # a probe's 503 is not a refusal
    assert body["checks"]["queue"]["ok"] is True
    assert client.get("/healthz").status_code == 200  # liveness does not ask the queue


def test_a_full_volume_degrades_readiness_and_refuses_uploads_with_retry_after(
    client: TestClient,
) -> None:
    """Below RAG_STORE__MIN_FREE_MB free, queries are served (degraded) and uploads get a
    503 with Retry-After before anything is written."""
    store = client.app.state.context.settings.store  # type: ignore[attr-defined]
    kept, store.min_free_mb = store.min_free_mb, 2**40  # more than any disk has
    try:
        ready = client.get("/readyz")
        upload = client.post("/v1/documents", files=[("files", ("a.md", b"# A", "text/plain"))])
        search = client.post("/v1/search", json={"query": "anything"})
    finally:
        store.min_free_mb = kept
    assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    assert ready.json()["checks"]["disk"]["error"] == "StorageFullError"
    assert (upload.status_code, upload.json()["type"]) == (503, "about:blank#storage-full")
    assert upload.headers["Retry-After"] == "5"
    assert search.status_code == 200
    assert client.get("/readyz").json()["status"] == "ready"


def test_a_hung_dependency_cannot_hang_the_probe(client: TestClient) -> None:
    context = client.app.state.context  # type: ignore[attr-defined]
    release = threading.Event()

    class HungStore:
        def count(self) -> int:
            release.wait(30)
            return 0

    healthy = context.store
    context.__dict__["store"] = HungStore()
    try:
        report = anyio.run(health.readiness, context, 0.2)
    finally:
        release.set()
        context.__dict__["store"] = healthy
    assert report.status is health.Readiness.NOT_READY
    assert report.checks["store"].error == "no answer within 0.2 s"
    assert report.checks["store"].latency_ms < 5_000


def test_readyz_with_no_model_answering_is_degraded_not_down(settings: Settings) -> None:
    """The LLM is on but its server is not there: answers fall back to extractive, so
    the service stays in rotation and says it is degraded."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings.model_copy(
        update={"llm": LlmSettings(enabled=True, endpoints={"local-smollm2": dead})}
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    model = body["checks"]["model:local-smollm2"]
    assert model["ok"] is False
    assert model["required"] is False
    assert body["checks"]["ledger"]["ok"] is True


def test_docs_pages_load_their_assets_from_this_server(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        response = client.get(page)
        assert response.status_code == 200
        assert "cdn.jsdelivr.net" not in response.text
        assert "fonts.googleapis.com" not in response.text
        assert f"/docs/assets/{asset}" in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
        script = client.get(f"/docs/assets/{asset}")
        assert script.status_code == 200
        assert len(script.content) > 100_000
    # Everything else keeps the API's strict policy.
    assert (
        client.get("/healthz").headers["content-security-policy"].startswith("default-src 'none'")
    )


def test_the_stream_is_spec_framed_server_sent_events(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/v1/ask/stream", json={"question": "How are chunk ids made?"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block.strip()]
    kinds = [line.split(": ", 1)[1] for e in events for line in e.splitlines() if "event" in line]
    assert kinds[-1] == "answer"
    assert set(kinds[:-1]) <= {"token"}


def test_the_docs_render_in_a_browser_without_internet(settings: Settings, tmp_path: Path) -> None:
    """Swagger UI and ReDoc draw the API's operations with every non-local request
    refused (FastAPI's defaults load them from a CDN and stay blank offline)."""
    from tests.services import browser_page, live_server

    with live_server(settings) as url, browser_page(url) as page:
        page.goto(f"{url}/docs")  # type: ignore[attr-defined]
        page.wait_for_selector(".opblock", timeout=20_000)  # type: ignore[attr-defined]
        operations = page.locator(".opblock").count()  # type: ignore[attr-defined]
        page.screenshot(path=tmp_path / "docs.png")  # type: ignore[attr-defined]
        page.goto(f"{url}/redoc")  # type: ignore[attr-defined]
        title = page.locator("h2", has_text="Ask Stream").first  # type: ignore[attr-defined]
        title.wait_for(timeout=20_000)
        redoc_drawn = title.is_visible()
    assert operations >= 10
    assert redoc_drawn
    assert (tmp_path / "docs.png").stat().st_size > 10_000


def test_hung_probes_cannot_starve_the_threads_requests_use(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the store hangs, a flood of readiness probes is answered (503) without a new
    thread per probe (an abandoned probe holds its thread until the store answers), and
    ordinary requests are still served."""
    context = client.app.state.context  # type: ignore[attr-defined]
    release = threading.Event()
    healthy = context.store

    class HungCount:
        def count(self, *args: object) -> int:
            release.wait(60)
            return 0

        def __getattr__(self, name: str) -> object:  # everything else: the real store
            return getattr(healthy, name)

    monkeypatch.setattr(health, "CHECK_TIMEOUT_S", 0.01)
    context.__dict__["store"] = HungCount()
    try:
        before = threading.active_count()
        bodies = [client.get("/readyz") for _ in range(50)]
        grown = threading.active_count() - before
        response = client.post("/v1/search", json={"query": "fusion", "top_k": 2})
    finally:
        release.set()
        context.__dict__["store"] = healthy
    assert {b.status_code for b in bodies} == {503}
    assert bodies[-1].json()["checks"]["store"]["error"] == "the last probe still runs"
    assert grown <= 4  # one hung probe and a pool thread per other check, not fifty
    assert response.status_code == 200


def test_a_closed_app_releases_its_context_and_models(settings: Settings) -> None:
    """Nothing process-wide (FastAPI's endpoint caches, the metrics registry, the query
    batcher's thread) may keep an app's context alive after it shut down: the suite builds
    hundreds, and each pins an embedding model."""
    import gc
    import time
    import weakref

    app = create_app(settings)
    with TestClient(app) as client:
        assert client.post("/v1/search", json={"query": "fusion"}).status_code == 200
        assert client.get("/metrics").status_code == 200
        context = weakref.ref(app.state.context)
    del app, client
    deadline = time.monotonic() + 15  # the batcher's thread ends after its idle time
    while context() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.2)
    assert context() is None
