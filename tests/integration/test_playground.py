"""The web playground, in a real headless Chromium against the real server.

Screenshots are kept as test artifacts in `reports/artifacts/` (ignored by git). The
browser tests skip with the reason where Chromium is not installed, and fail under CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.wiring import build_app_context
from core.settings import Settings
from core.types import Role
from tests.conftest import PROJECT_ROOT
from tests.services import browser_page, keys_settings, live_server

pytestmark = pytest.mark.integration

ARTIFACTS = PROJECT_ROOT / "reports" / "artifacts"
XSS = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 307
    assert home.headers["location"] == "/playground"
    page = client.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script" in page.text
    assert "http" not in page.text.split("<body>")[0]
    script = client.get("/playground/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text.replace("never innerHTML", "")
    for name in ("index.html.bak", "..%2F..%2Fapp.py", "%2e%2e/security.py", "nope.js"):
        assert client.get(f"/playground/{name}").status_code == 404


def _ask(page: Any, question: str) -> None:
    page.fill("#question", question)
    page.click("#ask-button")
    page.wait_for_selector("#citations li, #ask-error:not(:empty)", timeout=30_000)


def test_a_question_streams_an_answer_with_citations(
    settings: Settings, sample_corpus: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings, ingest=sample_corpus) as url, browser_page(url) as page:
        page.goto(f"{url}/playground")  # type: ignore[attr-defined]
        page.wait_for_selector("#document-table tbody tr")  # type: ignore[attr-defined]
        documents = page.locator("#document-table tbody tr").count()  # type: ignore[attr-defined]
        _ask(page, "Which vector store is the default?")
        answer = page.text_content("#answer")  # type: ignore[attr-defined]
        first = page.locator("#citations li").first  # type: ignore[attr-defined]
        source = first.get_attribute("data-source")
        quote = first.locator(".quote").text_content()
        rung = page.get_attribute("#provenance", "data-rung")  # type: ignore[attr-defined]
        details = page.text_content("#provenance")  # type: ignore[attr-defined]
        page.screenshot(path=ARTIFACTS / "playground.png", full_page=True)  # type: ignore[attr-defined]
    assert documents >= 5
    assert answer
    assert "[1]" in answer
    assert source == "0001-embedded-vector-store.html"
    assert quote
    assert len(quote) > 20
    assert rung == "extractive"
    assert "latency" in details
    assert "cost" in details
    assert (ARTIFACTS / "playground.png").stat().st_size > 10_000


def test_with_keys_the_page_asks_for_one_uploads_and_never_renders_markup(
    tmp_path: Path,
) -> None:
    """Auth on: without a key the page says so; with an ingestor's key it uploads a file
    (whose text is an XSS payload), watches the job finish, lists the document, and the
    answer quoting it shows the markup as text without running it."""
    settings = keys_settings(tmp_path, "play", requests_per_minute=10_000)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"allowed_hosts": ["127.0.0.1"]})}
    )
    context = build_app_context(settings)
    _, key = context.keys.create("acme", Role.INGESTOR)
    context.close()
    upload = tmp_path / "harbour-notes.txt"
    upload.write_text(f"The harbour master keeps the tide ledger. {XSS} It opens at dawn.\n")
    with live_server(settings) as url, browser_page(url) as page:
        page.goto(f"{url}/playground")  # type: ignore[attr-defined]
        _ask(page, "Who keeps the tide ledger?")
        refused = page.text_content("#ask-error")  # type: ignore[attr-defined]
        page.fill("#api-key", key)  # type: ignore[attr-defined]
        page.dispatch_event("#api-key", "change")  # type: ignore[attr-defined]
        page.set_input_files("#files", str(upload))  # type: ignore[attr-defined]
        page.click("#upload-form button")  # type: ignore[attr-defined]
        page.wait_for_selector(  # type: ignore[attr-defined]
            "#job[data-state=succeeded]", timeout=60_000
        )
        page.wait_for_selector("#document-table tbody tr")  # type: ignore[attr-defined]
        listed = page.text_content("#document-table tbody")  # type: ignore[attr-defined]
        _ask(page, "Who keeps the tide ledger?")
        quote = page.text_content("#citations li .quote")  # type: ignore[attr-defined]
        images = page.locator("#citations img, #answer img").count()  # type: ignore[attr-defined]
        pwned = page.evaluate("window.__pwned")  # type: ignore[attr-defined]
        page.screenshot(path=tmp_path / "keys.png")  # type: ignore[attr-defined]
    assert refused is not None
    assert "credentials" in refused.lower() or "key" in refused.lower()
    assert "harbour-notes.txt" in (listed or "")
    assert quote
    assert "<img src=x" in quote
    assert images == 0
    assert pwned is None
