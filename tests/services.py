"""What tests need from the machine's real services, and how tests hand settings to a CLI.

Redis and PostgreSQL tests skip with the reason where the service is not running, and fail
instead under CI (`CI=true`), which must run them. Each test gets a namespace of its own
(a Redis key prefix, a PostgreSQL schema) that is removed afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _unavailable(service: str, url: str, exc: Exception) -> None:
    if os.environ.get("CI") == "true":
        raise AssertionError(f"CI needs {service} at {url}: {exc}") from exc
    pytest.skip(f"no {service} at {url} ({exc}); start one to run these tests")


@contextmanager
def redis_namespace(prefix: str = "rag-test") -> Iterator[str]:
    """A key prefix of its own on the real Redis; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        _unavailable("Redis", REDIS_URL, exc)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        for key in client.scan_iter(match=f"{name}*"):
            client.delete(key)
        client.close()


@contextmanager
def postgres_schema(prefix: str = "test") -> Iterator[str]:
    """The URL of a throwaway schema on the real PostgreSQL, dropped afterwards."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        _unavailable("PostgreSQL", PG_URL, exc)
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def cli_env(settings: Settings, **extra: object) -> dict[str, str]:
    """The `RAG_*` variables that make a `rag` command (in-process or a subprocess) use
    the same data folder, store and models as `settings`."""
    env: Mapping[str, object] = {
        "RAG_DATA_DIR": settings.data_dir,
        "RAG_STORE__PATH": settings.store.path,
        "RAG_STORE__COLLECTION": settings.store.collection,
        "RAG_EMBEDDING__MODELS_DIR": settings.embedding.models_dir,
        **extra,
    }
    return {key: str(value) for key, value in env.items()}


def subprocess_env(settings: Settings, **extra: object) -> dict[str, str]:
    """The environment of a `rag` subprocess: this one's, minus any `RAG_*` the caller
    set, plus `cli_env(settings)` and the project on the import path."""
    from tests.conftest import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "PYTHONPATH": str(PROJECT_ROOT), **cli_env(settings, **extra)}


@contextmanager
def cli_settings(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, **extra: object
) -> Iterator[None]:
    """Run in-process `rag` commands (typer's CliRunner) against `settings`: they read
    the environment through the cached `get_settings()`, cleared before and after."""
    from core.settings import get_settings

    for key, value in cli_env(settings, **extra).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def keys_settings(folder: Path, collection: str, requests_per_minute: int) -> Settings:
    """An API in `keys` mode over its own embedded store under `folder` (TestClient's
    `Host: testserver` allowed), with a rate limit the test chooses."""
    from core.settings import (
        ApiSettings,
        AuthSettings,
        EmbeddingSettings,
        LimitSettings,
        StoreSettings,
    )
    from tests.conftest import PROJECT_ROOT

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=folder / "data",
        store=StoreSettings(backend="edge", path=folder / "qdrant", collection=collection),
        embedding=EmbeddingSettings(models_dir=PROJECT_ROOT / ".models"),
        api=ApiSettings(allowed_hosts=["testserver"]),
        auth=AuthSettings(mode="keys"),
        limits=LimitSettings(requests_per_minute=requests_per_minute),
    )


@contextmanager
def live_server(settings: Settings, *, ingest: Path | None = None) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread; yields its base
    URL (``http://127.0.0.1:PORT``). For clients that need real HTTP: the OpenAI SDK
    streaming, MCP's streamable HTTP client, a browser, a load generator. `ingest` is a
    folder ingested into the store before the server opens it."""
    import threading
    import time

    import uvicorn

    from api.app import create_app
    from api.wiring import build_app_context
    from ingest.parse import SUPPORTED_SUFFIXES
    from ingest.pipeline import discover

    if ingest is not None:
        context = build_app_context(settings)
        context.documents.ingest(discover(ingest, SUPPORTED_SUFFIXES), ingest)
        context.close()  # the server opens the shard itself
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start; see the log above")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def chromium_path() -> str:
    """Debian's Chromium for Playwright (nothing is downloaded): skip with the reason
    where it is not installed, fail under CI, which must run the browser tests."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        raise AssertionError(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@contextmanager
def browser_page(base_url: str) -> Iterator[object]:
    """A headless Chromium page (Playwright `Page`) that may reach `base_url` only: any
    other request is aborted, as on a machine without internet. The browser is closed on
    every path. `--no-sandbox`: Chromium's sandbox cannot start as root in a container."""
    from playwright.sync_api import Route, sync_playwright

    executable = chromium_path()

    def local_only(route: Route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            yield page
        finally:
            browser.close()
