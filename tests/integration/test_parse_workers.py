"""Parse workers never outlive their run: not after a failed write, not after the ingest
process is killed (SIGKILL leaves it no chance to shut its pool down)."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from api.wiring import build_app_context
from core.settings import Settings, SparseSettings
from ingest.chunk import StructureChunker
from ingest.embed import Bm25Encoder
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import Indexer, discover, ingest_paths
from tests.conftest import PROJECT_ROOT
from tests.fakes import HashEmbedder, LineParser, MemoryStore
from tests.processes import PROC, Proc, children, read, wait_until_gone
from tests.services import subprocess_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not PROC.is_dir(), reason="reads its processes from /proc (Linux)"),
]


def _corpus(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nNote {i} is about tide number {i}.\n\n"
            f"## More\n\nItem {i * 3} and item {i * 7} are related.\n"
        )
    return folder


def _still_running(procs: list[Proc]) -> list[Proc]:
    """Those of `procs` still alive (a pid reused by another program does not count)."""
    alive = [read(p.pid) for p in procs]
    return [p for p, now in zip(procs, alive, strict=True) if now and now.command == p.command]


def test_a_failed_write_still_shuts_the_parse_pool_down(tmp_path: Path) -> None:
    folder = _corpus(tmp_path / "notes", 4)
    before = set(multiprocessing.active_children())
    indexer = Indexer(HashEmbedder(8), Bm25Encoder(SparseSettings()), MemoryStore(fail_on_write=0))
    with pytest.raises(RuntimeError, match="disk full"):  # raised when the writer flushes
        ingest_paths(
            discover(folder, SUPPORTED_SUFFIXES),
            LineParser(),
            StructureChunker(600, 150),
            indexer,
            root=folder,
            workers=2,
        )
    assert set(multiprocessing.active_children()) <= before  # joined, not left running


def test_parse_workers_exit_when_the_ingest_process_is_killed(
    settings: Settings, tmp_path: Path
) -> None:
    folder = _corpus(tmp_path / "notes", 200)
    env = subprocess_env(settings, RAG_INGEST__PARSE_WORKERS=2)
    command = [sys.executable, "-u", "-m", "api.cli", "ingest", str(folder)]
    run = subprocess.Popen(  # small batches: documents are stored while most are unparsed
        command,
        cwd=PROJECT_ROOT,
        env={**env, "RAG_INGEST__BATCH_SIZE": "4"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert run.stdout is not None
    output: list[bytes] = []
    try:
        for line in run.stdout:  # a document is stored: the workers are set up and parsing
            output.append(line)
            if re.search(rb"note-\d+\.md: \d+ chunks", line):
                break
        family = children(run.pid)  # the parse workers and multiprocessing's resource tracker
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        run.stdout.close()
    assert run.returncode == -signal.SIGKILL, b"".join(output).decode(errors="replace")
    assert len([p for p in family if "multiprocessing.spawn" in p.command]) == 2, family
    left = wait_until_gone(lambda: _still_running(family), deadline_s=10)
    assert left == [], f"orphaned by the killed ingest: {[str(p) for p in left]}"

    report = tmp_path / "report.json"
    rerun = subprocess.run(
        [*command, "--report", str(report)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads(report.read_text())
    assert summary["documents"] > 0  # the killed run was cut short
    assert summary["documents"] + summary["skipped"] == 200

    clean_settings = settings.model_copy(deep=True)
    clean_settings.data_dir = tmp_path / "clean-data"
    clean_settings.store.path = tmp_path / "clean-qdrant"
    clean, resumed = build_app_context(clean_settings), build_app_context(settings)
    try:
        assert clean.documents.ingest(discover(folder, SUPPORTED_SUFFIXES), folder).ok
        assert resumed.store.count() == clean.store.count() == summary["points"]
        for path in folder.iterdir():  # no source lost a chunk or kept a duplicate
            only = {"source": path.name}
            assert resumed.store.count(only) == clean.store.count(only), path.name
        assert {r.state for r in resumed.manifest.sources("default")} == {"done"}
        assert len(resumed.manifest.sources("default")) == 200
    finally:
        clean.close()
        resumed.close()


def test_on_linux_the_kernel_signals_a_worker_when_its_parent_dies() -> None:
    """The parent-death signal is really set, not silently replaced by the portable watch
    (checked in a child interpreter: it would bind this test process to its own parent)."""
    check = textwrap.dedent(
        """
        import ctypes, signal
        from ingest.pipeline import _parent_death_signal
        assert _parent_death_signal()
        armed = ctypes.c_int()
        ctypes.CDLL(None).prctl(2, ctypes.byref(armed))  # PR_GET_PDEATHSIG
        assert armed.value == signal.SIGTERM, armed.value
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", check],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_without_the_kernel_signal_a_worker_still_exits_with_its_parent() -> None:
    """The portable watch (macOS has no parent-death signal), tested on its own."""
    parent = textwrap.dedent(
        """
        import multiprocessing, threading
        from tests.processes import watch_parent_and_wait
        child = multiprocessing.get_context("spawn").Process(target=watch_parent_and_wait)
        child.start()
        print(child.pid, flush=True)
        threading.Event().wait()
        """
    )
    run = subprocess.Popen(
        [sys.executable, "-c", parent],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    try:
        child_pid = int(run.stdout.readline())
        assert run.stdout.readline() == "watching\n"  # printed by the child
        child = read(child_pid)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        run.stdout.close()
    assert child is not None
    assert wait_until_gone(lambda: _still_running([child]), deadline_s=10) == []
