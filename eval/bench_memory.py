"""`make bench-memory`: what a process tree holds, so a pod's memory limit comes from numbers.

`TreeMemory` samples the resident set of a process and all its descendants (parse workers,
a server's children) in a thread and keeps the peak of their sum: `ru_maxrss` sees one
process only, and a parse worker's memory is the pod's memory too.

The command measures two trees (docs/adr/0027-cache-and-memory-at-size.md):
- `ingest`: `rag ingest` of a folder of real files (`--docs`, default the sample corpus of
  `docs/`) in a child process, parse workers included: `peak_rss_mb` (the tree), the
  peaks of the main process and of its children apart, `seconds`;
- `api_at_rest`: `rag serve` started, ready (`/readyz`), asked one search so the models
  are loaded, then left alone: `peak_rss_mb` (settled) and `rss_mb` after the search.
`bench-ingest` reports the same `peak_rss_mb` for its run over a BEIR corpus.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from eval.report import emit_json


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of `pid` alone and of it with all its descendants, in MiB (0 when
    it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for proc in procs:
        try:
            sizes.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:  # a worker that ended between listing and reading
            sizes.append(0)
    return sizes[0] / 2**20, sum(sizes) / 2**20


class TreeMemory:
    """Peak summed RSS of a process tree, sampled every `interval_s` in a thread while the
    `with` block runs (this process by default)."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.05) -> None:
        self._pid = os.getpid() if pid is None else pid
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_mb = 0.0
        self.peak_root_mb = 0.0  # the root process alone
        self.peak_children_mb = 0.0  # its descendants together (parse workers)

    def sample(self) -> float:
        """Sample now; the current summed RSS."""
        root, tree = tree_rss_mb(self._pid)
        self.peak_mb = max(self.peak_mb, tree)
        self.peak_root_mb = max(self.peak_root_mb, root)
        self.peak_children_mb = max(self.peak_children_mb, tree - root)
        return tree

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def _rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_STORE__PATH": str(data_dir / "qdrant-edge"),
        "RAG_AUTH__MODE": "none",
        **extra,
    }
    env.setdefault("RAG_LLM__ENABLED", "false")
    return env


def _watch(proc: subprocess.Popen[bytes], memory: TreeMemory, deadline_s: float) -> int:
    end = time.monotonic() + deadline_s
    while proc.poll() is None:
        if time.monotonic() > end:
            proc.kill()
            raise TimeoutError(f"{proc.args!r} ran past {deadline_s} s")
        memory.sample()
        time.sleep(0.05)
    return proc.returncode


def measure_ingest(docs: Path, extra: dict[str, str]) -> dict[str, Any]:
    """`rag ingest <docs>` in a fresh data folder: peak RSS of its tree, seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            _rag("ingest", str(docs)),
            env=_env(Path(tmp), extra),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        memory = TreeMemory(proc.pid)
        start = time.perf_counter()
        rc = _watch(proc, memory, 1800)
        seconds = time.perf_counter() - start
        if rc != 0:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"rag ingest failed ({rc}): {err[-2000:]}")
        return {
            "files": sum(1 for p in docs.rglob("*") if p.is_file()),
            "bytes": sum(p.stat().st_size for p in docs.rglob("*") if p.is_file()),
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(memory.peak_mb, 1),
            "peak_main_rss_mb": round(memory.peak_root_mb, 1),
            "peak_workers_rss_mb": round(memory.peak_children_mb, 1),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure_api(docs: Path, extra: dict[str, str], settle_s: float) -> dict[str, Any]:
    """`rag serve` on an index of `docs`: RSS when ready, after one search, and settled."""
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp), extra)
        subprocess.run(_rag("ingest", str(docs)), env=env, check=True, capture_output=True)
        port = _free_port()
        proc = subprocess.Popen(
            _rag("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            memory = TreeMemory(proc.pid)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("rag serve did not become ready")
                time.sleep(0.2)
            ready = memory.sample()
            response = httpx.post(f"{base}/v1/search", json={"query": "chunking"}, timeout=60)
            response.raise_for_status()
            searched = memory.sample()
            end = time.monotonic() + settle_s
            while time.monotonic() < end:
                memory.sample()
                time.sleep(0.1)
            return {
                "ready_rss_mb": round(ready, 1),
                "rss_mb": round(searched, 1),
                "settled_rss_mb": round(memory.sample(), 1),
                "peak_rss_mb": round(memory.peak_mb, 1),
            }
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_memory")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="a folder of files")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds at rest")
    parser.add_argument(
        "--set", action="append", default=[], metavar="RAG_X=Y", help="a setting for both"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    report = {
        "docs": str(args.docs),
        "settings": extra,
        "ingest": measure_ingest(args.docs, extra),
        "api_at_rest": measure_api(args.docs, extra, args.settle),
    }
    emit_json(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
