"""The processes a test session starts, read from /proc (Linux) without psutil.

`tests/conftest.py` marks the session's environment with `SESSION_ENV`; every process a
test starts inherits it, however deep, so a leftover is found even after its parent died
and it was re-parented to init.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

#: Not `RAG_*`: tests that run the CLI drop those from the environment they pass on.
SESSION_ENV = "PYTEST_RAG_SESSION"
PROC = Path("/proc")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    command: str
    environ: tuple[str, ...]

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}): {self.command[:160]}"


def read(pid: int) -> Proc | None:
    """The process `pid`, or None once it has exited (a zombie has exited)."""
    folder = PROC / str(pid)
    try:
        stat = (folder / "stat").read_text()
        cmdline = (folder / "cmdline").read_bytes()
        environ = (folder / "environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return None
    state, ppid = stat.rpartition(")")[2].split()[:2]  # the name in (...) may hold spaces
    if state in ("Z", "X"):
        return None
    command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return Proc(pid, int(ppid), command, tuple(environ.decode(errors="replace").split("\0")))


def processes() -> list[Proc]:
    """Every live process this user may read."""
    found = (read(int(entry.name)) for entry in PROC.iterdir() if entry.name.isdigit())
    return [proc for proc in found if proc is not None]


def children(pid: int) -> list[Proc]:
    return [proc for proc in processes() if proc.ppid == pid]


def session_processes() -> list[Proc]:
    """Live processes this test session started, at any depth, orphans included: those
    carrying this session's marker, and this process's children (which may not)."""
    me, marker = os.getpid(), f"{SESSION_ENV}={os.environ.get(SESSION_ENV)}"
    return [p for p in processes() if p.pid != me and (p.ppid == me or marker in p.environ)]


def wait_until_gone(
    find: Callable[[], list[T]], deadline_s: float, interval_s: float = 0.05
) -> list[T]:
    """Poll `find` until it finds nothing or the deadline passes; what is left."""
    end = time.monotonic() + deadline_s
    while (left := find()) and time.monotonic() < end:
        time.sleep(interval_s)
    return left


def watch_parent_and_wait() -> None:
    """A spawned child for the tests: only `ingest.pipeline`'s portable parent watch (no
    kernel signal) can end it once its parent is killed."""
    import multiprocessing
    import threading

    from ingest.pipeline import _watch_parent

    parent = multiprocessing.parent_process()
    assert parent is not None, "run me as a multiprocessing child"
    _watch_parent(parent)
    print("watching", flush=True)
    threading.Event().wait()
