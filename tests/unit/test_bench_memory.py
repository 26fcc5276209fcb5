"""The memory figure the benchmarks report: the peak RSS summed over a process tree."""

from __future__ import annotations

import subprocess
import sys
import time

from eval.bench_memory import TreeMemory, tree_rss_mb

HOLD_80_MB = (
    "import sys, time; b = bytearray(80 * 2**20); sys.stdout.write('ok\\n'); "
    "sys.stdout.flush(); time.sleep(30)"
)


def test_the_peak_counts_the_children_not_only_the_parent() -> None:
    with TreeMemory(interval_s=0.01) as memory:
        alone = memory.sample()
        child = subprocess.Popen(  # a parse worker's stand-in: 80 MB of its own
            [sys.executable, "-c", HOLD_80_MB], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ok\n"
            deadline = time.monotonic() + 10
            while memory.sample() < alone + 80 and time.monotonic() < deadline:
                time.sleep(0.01)
            root, tree = tree_rss_mb(child.pid)
            assert root == tree >= 80
        finally:
            child.kill()
            child.communicate()
    assert memory.peak_mb >= alone + 80
    assert memory.peak_root_mb < memory.peak_mb - 70
    assert memory.peak_children_mb >= 80  # the worker's own share, reported apart


def test_a_process_that_is_gone_weighs_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert tree_rss_mb(child.pid) == (0.0, 0.0)
