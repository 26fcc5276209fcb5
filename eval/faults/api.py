"""The API as a real process (`rag serve`), and the HTTP calls the faults are judged by.

The suite and `tests/integration/test_job_restart.py` both start the server this way:
settings only through `RAG_*` variables, its output in a log file, stopped by a signal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Mapping[str, object]) -> dict[str, str]:
    """This process's environment without its `RAG_*`, plus `settings` and the project on
    the import path: the server reads nothing else."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**keep, "PYTHONPATH": str(PROJECT), **{k: str(v) for k, v in settings.items()}}


class ApiProcess:
    """One `rag serve` process on a free loopback port; `start` waits until it serves."""

    def __init__(self, settings: Mapping[str, object], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = server_env(settings)
        self._log_path = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 120.0) -> float:
        """Start and wait for `/healthz` (the lifespan ran, the store answers); seconds."""
        begin = time.monotonic()
        command = [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port)]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=PROJECT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the API exited ({self._process.returncode}); see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - begin
            except httpx.HTTPError:
                pass
            if time.monotonic() - begin > deadline_s:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the API did not serve within {deadline_s:g} s; see {self.log}")
            time.sleep(0.2)

    @property
    def log(self) -> Path:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, deadline_s: float = 90.0) -> int | None:
        """Send `sig` and wait for the exit (SIGKILL after `deadline_s`); the exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=30)


def upload(
    client: httpx.Client,
    files: Sequence[tuple[str, bytes]],
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """`POST /v1/documents` with these (name, content) files in one request."""
    parts = [("files", (name, data, "text/plain")) for name, data in files]
    return client.post("/v1/documents", files=parts, headers=headers, timeout=120)


def wait_jobs(
    client: httpx.Client,
    job_ids: Sequence[str],
    headers: Mapping[str, str] | None = None,
    deadline_s: float = 300.0,
) -> dict[str, dict[str, Any]]:
    """Poll `GET /v1/jobs/{id}` until every job has an outcome; their last bodies. A job
    that is not done by the deadline is returned as it is (the caller decides)."""
    end, last = time.monotonic() + deadline_s, {}
    pending = list(job_ids)
    while pending:  # asked at least once, even with deadline_s=0
        for job_id in list(pending):
            try:
                response = client.get(f"/v1/jobs/{job_id}", headers=headers, timeout=10)
            except httpx.HTTPError:
                continue  # the server is restarting or busy: ask again
            if response.status_code != 200:
                continue
            last[job_id] = response.json()
            if last[job_id]["state"] not in ("queued", "running"):
                pending.remove(job_id)
        if not pending or time.monotonic() >= end:
            break
        time.sleep(0.25)
    return last
