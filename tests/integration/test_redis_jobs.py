"""The Redis-backed job queue, on the real Redis at 127.0.0.1:6379, two workers at once.

What every `JobQueue` adapter does (retries, backoff, dead letters) is the contract suite's
(tests/contract/test_job_queue.py); here is what only Redis does: several workers, and
workers in other processes. Skips with a reason where no Redis runs; under CI (CI=true) it
must run, never skip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.wiring import build_app_context
from core.ports import JobHandler, ProgressSink
from core.settings import Settings
from core.types import IngestJob, JobState, JobStatus
from ingest.jobs import RedisJobQueue
from tests.services import REDIS_URL, redis_namespace, subprocess_env

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace() -> Iterator[str]:
    with redis_namespace() as name:
        yield name


def _wait(queue: RedisJobQueue, ids: list[str], deadline_s: float = 90.0) -> list[JobStatus]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        statuses = [queue.status(i) for i in ids]
        if all(s and s.state not in (JobState.QUEUED, JobState.RUNNING) for s in statuses):
            return [s for s in statuses if s]
        time.sleep(0.05)
    raise AssertionError(f"jobs did not finish: {[queue.status(i) for i in ids]}")


def _queue(namespace: str, handler: JobHandler) -> RedisJobQueue:
    return RedisJobQueue(REDIS_URL, handler, namespace=namespace, max_attempts=3, backoff_s=0.01)


def test_two_workers_share_one_queue_and_ingest_every_upload(
    namespace: str, settings: Settings, tmp_path: Path
) -> None:
    ctx = build_app_context(settings)
    threads: dict[str, str] = {}

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        threads[job.id] = threading.current_thread().name
        time.sleep(0.2)  # long enough for the second worker to take its share
        return ctx.documents.run_job(job, progress)

    queue = _queue(namespace, handler)
    queue.start_worker()
    queue.start_worker()
    try:
        ids = []
        for i in range(6):
            folder = tmp_path / f"upload-{i}"
            folder.mkdir()
            (folder / f"note-{i}.md").write_text(f"# Note {i}\n\nFact number {i} about tides.\n")
            ids.append(
                queue.submit(
                    IngestJob(f"job-{i}", ((str(folder / f"note-{i}.md"), f"note-{i}.md"),))
                )
            )
        statuses = _wait(queue, ids)
    finally:
        queue.close()
    try:
        assert [s.state for s in statuses] == [JobState.SUCCEEDED] * 6
        assert all(s.documents == 1 for s in statuses)
        assert len(set(threads.values())) == 2  # both workers took jobs
        assert ctx.store.count() == 6
    finally:
        ctx.close()


def test_a_rag_worker_process_serves_jobs_submitted_elsewhere(
    namespace: str, settings: Settings, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    env = subprocess_env(
        settings,
        RAG_JOBS__BACKEND="redis",
        RAG_JOBS__REDIS_URL=REDIS_URL,
        RAG_JOBS__NAMESPACE=namespace,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    note = tmp_path / "kelp.md"
    note.write_text("# Kelp\n\nKelp forests grow up to half a metre a day.\n")

    def never(job: IngestJob, progress: ProgressSink) -> JobStatus:
        raise AssertionError("the submitting process must not run jobs")

    queue = _queue(namespace, never)  # submit only: no worker started here
    try:
        status = _wait(queue, [queue.submit(IngestJob("remote", ((str(note), "kelp.md"),)))])[0]
    finally:
        queue.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    assert (status.state, status.documents, status.chunks) == (JobState.SUCCEEDED, 1, 1)
    assert worker.returncode == 0


def test_a_redis_restart_mid_job_loses_no_job_and_the_worker_goes_on(tmp_path: Path) -> None:
    """A Redis of its own (append-only), SIGKILLed while a job writes its progress, then
    restarted: the running job is retried and succeeds, and a job sent after the restart
    is served by the same worker. Before the fix, the progress write raised a Redis error
    that was no outage to the queue: the job was dead-lettered, its status stuck at
    `running`."""
    import shutil

    from core.types import IngestProgress
    from eval.faults.deps import RedisServer

    if shutil.which("redis-server") is None:
        _unavailable_binary()
    server = RedisServer(tmp_path / "redis")
    server.start()
    started, release = threading.Event(), threading.Event()

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        if job.id == "long" and not release.is_set():
            started.set()
            deadline = time.monotonic() + 20
            while not release.is_set() and time.monotonic() < deadline:
                progress(IngestProgress(files_total=1, chunks_total=10))
                time.sleep(0.05)
        return JobStatus(job.id, JobState.SUCCEEDED, documents=1)

    queue = RedisJobQueue(
        server.url, handler, namespace="restart", max_attempts=1, backoff_s=0.05,
        retry_window_s=60.0,
    )  # fmt: skip
    try:
        queue.start_worker()
        queue.submit(IngestJob("long", ()))
        assert started.wait(20)
        server.kill()
        time.sleep(1.0)  # progress writes fail meanwhile
        release.set()
        server.start()
        queue.submit(IngestJob("after", ()))
        statuses = _wait(queue, ["long", "after"], deadline_s=60)
        assert [s.state for s in statuses] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
        assert queue.dead_letters() == []
    finally:
        queue.close()
        server.stop()


def _unavailable_binary() -> None:
    import os

    if os.environ.get("CI") == "true":
        raise AssertionError("CI needs redis-server on PATH (Debian: redis-server)")
    pytest.skip("redis-server is not on PATH; install it to run this test")
