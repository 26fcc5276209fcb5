"""`make bench-load` end to end, tiny: one client, five seconds per endpoint."""

from __future__ import annotations

import pytest

from eval import bench_load
from tests.processes import session_processes

pytestmark = pytest.mark.integration


def test_the_load_benchmark_reports_what_the_issue_names() -> None:
    # 5 s a run: on a busy 2-core machine locust itself can take most of 2 s to start.
    report = bench_load.run(seconds=5, levels=[1])
    for endpoint in ("search", "ask"):
        row = report[endpoint]["c1"]
        assert row["requests"] >= 3  # shape, not speed: ask quotes after a model call
        assert row["errors"] == 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert report["in_process"]["search_p50_ms"] > 0
    assert report["in_process"]["embed_query_p50_ms"] > 0
    assert isinstance(report["overhead_ms"]["p50"], float)
    # The server and locust were stopped.
    assert not [p for p in session_processes() if "uvicorn" in p.command or "locust" in p.command]
