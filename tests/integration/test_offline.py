"""The default path works with the network gone: only loopback sockets may connect."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.network_blocked]

GUARD = textwrap.dedent(
    """
    import ipaddress, os, socket

    _connect = socket.socket.connect
    _log = os.environ["NET_GUARD_LOG"]

    def _allowed(address):
        if not isinstance(address, tuple):
            return True  # AF_UNIX
        host = address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def guarded_connect(self, address):
        if not _allowed(address):
            with open(_log, "a") as log:
                log.write(f"blocked {address!r}\\n")
            raise ConnectionRefusedError(f"outbound network refused by test: {address!r}")
        return _connect(self, address)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = lambda self, address: (
        _connect(self, address) or 0) if _allowed(address) else 111
    open(_log, "a").write("guard active\\n")
    """
)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(guard_dir), str(PROJECT_ROOT)]),
            "NET_GUARD_LOG": str(tmp_path / "net.log"),
            "RAG_DATA_DIR": str(tmp_path / "data"),
            "RAG_STORE__PATH": str(tmp_path / "qdrant"),
            "RAG_EMBEDDING__MODELS_DIR": str(PROJECT_ROOT / ".models"),
            # Let libraries *try* to phone home: the guard, not the env, must stop them.
            "HF_HUB_OFFLINE": "0",
        }
    )
    return env


def test_the_guard_refuses_outbound_connections(offline_env: dict[str, str]) -> None:
    probe = _run(
        ["-c", "import socket; socket.create_connection(('192.0.2.1', 443), 5)"], offline_env
    )
    assert probe.returncode != 0
    assert "outbound network refused" in probe.stderr


def test_ingest_and_ask_with_the_network_blocked(
    offline_env: dict[str, str], sample_corpus: Path, tmp_path: Path
) -> None:
    ingest = _run(["-m", "api.cli", "ingest", str(sample_corpus)], offline_env)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "ingested 5 documents" in ingest.stdout
    ask = _run(["-m", "api.cli", "ask", "How are chunk ids made deterministic?"], offline_env)
    assert ask.returncode == 0, ask.stdout + ask.stderr
    assert "[1] 0003-chunking.pdf" in ask.stdout
    log = (tmp_path / "net.log").read_text()
    assert "guard active" in log
    assert "blocked" not in log, log  # nothing even tried to reach the network
