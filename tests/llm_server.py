"""The real local LLM server (llama-cpp-python + SmolLM2-135M) for integration tests.

Tests that need it take the `llm_server` fixture: it skips with the reason where the
server is not installed (`make llm-deps`), and fails under CI, where it must run.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gateway.local_model import gguf_path, server_command, server_env

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_local_llm() -> Path:
    """The GGUF path, or skip (fail under CI) when the local server cannot run here."""
    model = gguf_path(PROJECT_ROOT / ".models")
    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python is not installed")
    if not model.is_file():
        missing.append(f"{model} is missing")
    if missing:
        reason = "; ".join(missing) + ": run `make llm-deps` to run the local-LLM tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the local-LLM tests: {reason}")
        pytest.skip(reason)
    return model


class LocalLlmServer:
    """One llama.cpp server process on a free port; `kill()` for the fault tests."""

    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._log_path = log
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            server_command(model, self.port, threads=2),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=server_env(),
        )
        self._wait_ready(deadline_s=120)
        self._smoke_test()

    def _wait_ready(self, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self._process.poll() is not None:
                raise AssertionError(f"the LLM server exited ({self._process.returncode})")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the LLM server did not come up")

    def _smoke_test(self) -> None:
        """One token through the model: a broken build dies here, not in a test's request."""
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        try:
            httpx.post(f"{self.url}/chat/completions", json=body, timeout=60).raise_for_status()
        except httpx.HTTPError as exc:
            tail = self._log_path.read_bytes()[-2000:].decode(errors="replace")
            code = self._process.poll()
            raise AssertionError(
                f"the LLM server cannot answer ({exc}; exit code {code}); log tail:\n{tail}"
            ) from exc

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        self._process.kill()
        self._process.wait(10)

    def stop(self) -> None:
        if self.alive:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
