"""One contract for every `JobQueue` adapter: in-process, and Redis (Dramatiq).

The Redis cases run on the real Redis at 127.0.0.1:6379; without one they skip with the
reason, and under CI (CI=true) they fail instead. A fork that adds an adapter adds one
fixture param here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from core.errors import IngestError, StoreError
from core.ports import JobQueue, ProgressSink
from core.types import IngestJob, IngestProgress, JobState, JobStatus
from ingest.jobs import InProcessJobQueue, RedisJobQueue
from tests.services import REDIS_URL, redis_namespace

pytestmark = pytest.mark.integration

Handler = Callable[[IngestJob, ProgressSink], JobStatus]
QueueFactory = Callable[..., JobQueue]  # (handler, max_attempts=3, backoff_s=0.01, window=0)


@pytest.fixture(params=["in-process", "redis"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueFactory]:
    with ExitStack() as closing:  # the queues first, then their Redis keys
        namespace = closing.enter_context(redis_namespace()) if request.param == "redis" else ""

        def factory(
            handler: Handler,
            max_attempts: int = 3,
            backoff_s: float = 0.01,
            retry_window_s: float = 0.0,
        ) -> JobQueue:
            queue: JobQueue
            if request.param == "in-process":
                queue = InProcessJobQueue(
                    handler,
                    max_attempts,
                    backoff_s,
                    path=tmp_path / "jobs.sqlite3",
                    retry_window_s=retry_window_s,
                )
            else:
                redis_queue = RedisJobQueue(
                    REDIS_URL,
                    handler,
                    namespace=namespace,
                    max_attempts=max_attempts,
                    backoff_s=backoff_s,
                    retry_window_s=retry_window_s,
                )
                redis_queue.start_worker()
                queue = redis_queue
            closing.callback(queue.close)
            return queue

        yield factory


def _wait(queue: JobQueue, job_id: str, deadline_s: float = 30.0) -> JobStatus:
    """Poll with a deadline until the job leaves queued/running."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status = queue.status(job_id)
        if status and status.state not in (JobState.QUEUED, JobState.RUNNING):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {queue.status(job_id)}")


def test_a_job_runs_once_and_its_status_says_what_it_did(make_queue: QueueFactory) -> None:
    seen: list[IngestJob] = []

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        seen.append(job)
        return JobStatus(job.id, JobState.SUCCEEDED, documents=1, chunks=4)

    queue = make_queue(handler)
    job = IngestJob("one", (("/uploads/one/a.md", "a.md"),), "acme", ("legal",))
    assert queue.submit(job) == "one"
    status = _wait(queue, "one")
    assert seen == [job]  # the job arrives whole, tenant and groups included
    assert (status.state, status.attempts, status.documents, status.chunks) == (
        JobState.SUCCEEDED,
        1,
        1,
        4,
    )
    assert status.tenant == "acme"
    assert status.updated_at
    assert queue.status("never-submitted") is None
    assert queue.dead_letters() == []


def test_transient_errors_are_retried_with_exponential_backoff(make_queue: QueueFactory) -> None:
    """Every adapter waits at least half of backoff_s x 2^(n-1) before retry n."""
    backoff_s, attempts = 0.2, []

    def flaky(job: IngestJob, progress: ProgressSink) -> JobStatus:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise StoreError("Qdrant is restarting")
        return JobStatus(job.id, JobState.SUCCEEDED, documents=1)

    queue = make_queue(flaky, max_attempts=3, backoff_s=backoff_s)
    status = _wait(queue, queue.submit(IngestJob("flaky", ())))
    assert (status.state, status.attempts) == (JobState.SUCCEEDED, 3)
    assert queue.dead_letters() == []
    waits = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    least = [0.5 * backoff_s * 2 ** (n - 1) for n in (1, 2)]
    assert all(w >= low - 0.01 for w, low in zip(waits, least, strict=True)), (waits, least)


def test_a_job_that_keeps_failing_is_dead_lettered_with_its_reason(
    make_queue: QueueFactory,
) -> None:
    def broken(job: IngestJob, progress: ProgressSink) -> JobStatus:
        raise StoreError("connection refused")

    queue = make_queue(broken, max_attempts=2)
    status = _wait(queue, queue.submit(IngestJob("outage", ())))
    assert (status.state, status.attempts) == (JobState.FAILED, 2)
    assert status.errors["job"] == "StoreError: connection refused"
    assert queue.dead_letters() == ["outage"]


def test_an_outage_longer_than_the_attempts_is_waited_out(make_queue: QueueFactory) -> None:
    """Two attempts would dead-letter this job; the retry window keeps it alive until the
    store is back (0.6 s of failures, a 5 s window)."""
    back_at, attempts = time.monotonic() + 0.6, []

    def restarting(job: IngestJob, progress: ProgressSink) -> JobStatus:
        attempts.append(time.monotonic())
        if time.monotonic() < back_at:
            raise StoreError("Qdrant is restarting")
        return JobStatus(job.id, JobState.SUCCEEDED, documents=1)

    queue = make_queue(restarting, max_attempts=2, backoff_s=0.05, retry_window_s=5.0)
    status = _wait(queue, queue.submit(IngestJob("outage", ())))
    assert status.state is JobState.SUCCEEDED
    assert status.attempts == len(attempts) > 2
    assert queue.dead_letters() == []


def test_the_retry_window_ends_in_a_dead_letter(make_queue: QueueFactory) -> None:
    """Past max_attempts, the window decides: tries go on for it, then the job fails."""
    attempts: list[float] = []

    def down(job: IngestJob, progress: ProgressSink) -> JobStatus:
        attempts.append(time.monotonic())
        raise StoreError("connection refused")

    queue = make_queue(down, max_attempts=1, backoff_s=0.05, retry_window_s=0.5)
    status = _wait(queue, queue.submit(IngestJob("gone", ())))
    assert status.state is JobState.FAILED
    assert len(attempts) > 1
    assert attempts[-1] - attempts[0] >= 0.5 - 0.05
    assert queue.dead_letters() == ["gone"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (IngestError("no parser for .xyz"), "IngestError: no parser for .xyz"),
        (ValueError("a bug: /srv/secret/path"), "ValueError (see the server log)"),  # no path
    ],
)
def test_other_errors_fail_at_once_and_the_worker_keeps_serving(
    make_queue: QueueFactory, error: Exception, reason: str
) -> None:
    calls: list[str] = []

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        calls.append(job.id)
        if job.id == "bug":
            raise error
        return JobStatus(job.id, JobState.SUCCEEDED)

    queue = make_queue(handler)
    failed = _wait(queue, queue.submit(IngestJob("bug", ())))
    after = _wait(queue, queue.submit(IngestJob("next", ())))
    assert (failed.state, failed.attempts) == (JobState.FAILED, 1)
    assert failed.errors["job"] == reason
    assert after.state is JobState.SUCCEEDED
    assert calls == ["bug", "next"]
    assert queue.dead_letters() == ["bug"]


def test_counts_follow_jobs_through_their_states(make_queue: QueueFactory) -> None:
    release = threading.Event()

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        if job.id == "slow":
            release.wait(30)
        if job.id == "bad":
            raise IngestError("unreadable")
        return JobStatus(job.id, JobState.SUCCEEDED)

    queue = make_queue(handler)
    assert queue.counts() == dict.fromkeys(JobState, 0)
    queue.submit(IngestJob("slow", ()))
    queue.submit(IngestJob("next", ()))
    deadline = time.monotonic() + 30
    while queue.counts()[JobState.RUNNING] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    during = queue.counts()
    release.set()
    _wait(queue, "slow")
    _wait(queue, "next")
    _wait(queue, queue.submit(IngestJob("bad", ())))
    assert (during[JobState.RUNNING], during[JobState.QUEUED]) == (1, 1)
    after = queue.counts()
    assert (after[JobState.SUCCEEDED], after[JobState.FAILED]) == (2, 1)
    assert after[JobState.RUNNING] == after[JobState.QUEUED] == 0


def test_a_running_job_shows_its_progress(make_queue: QueueFactory) -> None:
    """What the handler reports is what `status` shows while the job runs (the Redis
    adapter may skip updates closer than its interval, never the first)."""
    reported, release = threading.Event(), threading.Event()

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        progress(IngestProgress(files_total=2, files_done=0, chunks_total=40, chunks_embedded=16))
        reported.set()
        release.wait(30)
        return JobStatus(job.id, JobState.SUCCEEDED, progress=IngestProgress(2, 2, 40, 40))

    queue = make_queue(handler)
    queue.submit(IngestJob("big", ()))
    assert reported.wait(30)
    running = queue.status("big")
    release.set()
    done = _wait(queue, "big")
    assert running is not None
    assert running.state is JobState.RUNNING
    assert running.progress == IngestProgress(2, 0, 40, 16)
    assert done.progress == IngestProgress(2, 2, 40, 40)
