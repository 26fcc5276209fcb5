"""Shared fixtures. Offline defaults are applied before any library loads a model.

Every process a test starts carries this session's mark (`tests.processes`): a run that
leaves one alive fails, naming it.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from core.offline import apply_offline_defaults
from tests.processes import PROC, SESSION_ENV, session_processes, wait_until_gone

apply_offline_defaults()
os.environ[SESSION_ENV] = uuid.uuid4().hex

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


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Fail the run when a process a test started outlives the tests (an orphaned parse
    worker holds ~300 MB for ever). Set up first, so torn down last: after `llm_server`
    has stopped its server; the Redis worker test stops its `rag worker` itself."""
    yield
    left = wait_until_gone(_leftover_processes, deadline_s=10)
    if left:
        pytest.fail("the tests left processes running:\n  " + "\n  ".join(left), pytrace=False)


def _leftover_processes() -> list[str]:
    found = {p.pid: f"pid {p.pid}: {p.name}" for p in multiprocessing.active_children()}
    if PROC.is_dir():
        for proc in session_processes():
            # Exempt: multiprocessing's resource tracker, started by the first process
            # pool, lives as long as this process and exits with it (end of its pipe).
            if proc.ppid == os.getpid() and "multiprocessing.resource_tracker" in proc.command:
                continue
            found[proc.pid] = str(proc)
    return sorted(found.values())
