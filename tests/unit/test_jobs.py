from __future__ import annotations

import time

from core.errors import IngestError, StoreError
from core.types import IngestJob, JobState, JobStatus
from ingest.jobs import InProcessJobQueue


def _wait(queue: InProcessJobQueue, job_id: str, deadline_s: float = 10.0) -> JobStatus:
    """Poll with a deadline until the job leaves queued/running."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status = queue.status(job_id)
        if status and status.state not in (JobState.QUEUED, JobState.RUNNING):
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {queue.status(job_id)}")


def test_transient_errors_are_retried_until_success() -> None:
    calls: list[str] = []

    def flaky(job: IngestJob) -> JobStatus:
        calls.append(job.id)
        if len(calls) < 3:
            raise StoreError("store restarting")
        return JobStatus(job.id, JobState.SUCCEEDED, documents=1, chunks=4)

    jobs = InProcessJobQueue(flaky, max_attempts=3, backoff_s=0.001)
    status = _wait(jobs, jobs.submit(IngestJob("j1", (("/tmp/a.md", "a.md"),))))
    jobs.close()
    assert (status.state, status.attempts, status.chunks) == (JobState.SUCCEEDED, 3, 4)
    assert jobs.dead_letters() == []


def test_a_job_that_keeps_failing_is_dead_lettered_with_its_reason() -> None:
    def broken(job: IngestJob) -> JobStatus:
        raise StoreError("connection refused")

    jobs = InProcessJobQueue(broken, max_attempts=2, backoff_s=0.001)
    status = _wait(jobs, jobs.submit(IngestJob("j2", ())))
    jobs.close()
    assert (status.state, status.attempts) == (JobState.FAILED, 2)
    assert "connection refused" in status.errors["job"]
    assert jobs.dead_letters() == ["j2"]


def test_other_errors_fail_at_once_and_the_worker_keeps_serving() -> None:
    calls: list[str] = []

    def handler(job: IngestJob) -> JobStatus:
        calls.append(job.id)
        if job.id == "bug":
            raise IngestError("a bug, not an outage")
        return JobStatus(job.id, JobState.SUCCEEDED)

    jobs = InProcessJobQueue(handler, max_attempts=3, backoff_s=0.001)
    failed = _wait(jobs, jobs.submit(IngestJob("bug", ())))
    after = _wait(jobs, jobs.submit(IngestJob("next", ())))
    jobs.close()
    assert (failed.state, failed.attempts) == (JobState.FAILED, 1)
    assert after.state is JobState.SUCCEEDED
    assert calls == ["bug", "next"]
