"""The in-process queue keeps its jobs in a SQLite file: a new queue on the same file
resumes what the last one left unfinished, and a graceful stop costs no attempt.

A "crash" here is a queue whose worker is stuck in a job when a second queue opens the
file, as after a process was killed: the file says the job was running. The real process
kill is `tests/integration/test_job_restart.py`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from core.ports import ProgressSink
from core.types import IngestJob, IngestProgress, JobState, JobStatus
from ingest.jobs import InProcessJobQueue


def _wait(queue: InProcessJobQueue, job_id: str, deadline_s: float = 20.0) -> JobStatus:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status = queue.status(job_id)
        if status and status.state not in (JobState.QUEUED, JobState.RUNNING):
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {queue.status(job_id)}")


def _wait_running(queue: InProcessJobQueue, job_id: str, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while (status := queue.status(job_id)) is None or status.state is not JobState.RUNNING:
        assert time.monotonic() < end, f"job {job_id} never ran: {status}"
        time.sleep(0.01)


def _succeed(job: IngestJob, progress: ProgressSink) -> JobStatus:
    return JobStatus(job.id, JobState.SUCCEEDED, documents=len(job.files))


def test_a_new_queue_on_the_same_file_resumes_unfinished_jobs(tmp_path: Path) -> None:
    path, stuck, release = tmp_path / "jobs.sqlite3", threading.Event(), threading.Event()

    def hang(job: IngestJob, progress: ProgressSink) -> JobStatus:
        stuck.set()
        release.wait(30)
        return JobStatus(job.id, JobState.SUCCEEDED)

    first = InProcessJobQueue(hang, max_attempts=3, backoff_s=0.01, path=path)
    try:
        first.submit(IngestJob("big", (("/uploads/big/a.md", "a.md"),), "acme", ("hr",)))
        first.submit(IngestJob("next", (("/uploads/next/b.md", "b.md"),), "acme"))
        first.submit(IngestJob("done", ()))
        assert stuck.wait(10)
        seen: list[IngestJob] = []

        def record(job: IngestJob, progress: ProgressSink) -> JobStatus:
            seen.append(job)
            return _succeed(job, progress)

        second = InProcessJobQueue(record, max_attempts=3, backoff_s=0.01, path=path)
        try:
            big, after = _wait(second, "big"), _wait(second, "next")
            _wait(second, "done")
        finally:
            second.close()
    finally:
        release.set()
        first.close()
    assert [job.id for job in seen] == ["big", "next", "done"]  # in their order, once each
    assert seen[0] == IngestJob("big", (("/uploads/big/a.md", "a.md"),), "acme", ("hr",))
    assert (big.state, big.attempts, big.tenant, big.documents) == (
        JobState.SUCCEEDED,
        2,  # the dead process spent the first attempt
        "acme",
        1,
    )
    assert (after.state, after.attempts) == (JobState.SUCCEEDED, 1)


def test_finished_jobs_answer_after_a_restart_and_are_not_run_again(tmp_path: Path) -> None:
    path, calls = tmp_path / "jobs.sqlite3", []

    def handler(job: IngestJob, progress: ProgressSink) -> JobStatus:
        calls.append(job.id)
        if job.id == "bad":
            raise ValueError("a bug")
        return _succeed(job, progress)

    first = InProcessJobQueue(handler, path=path)
    _wait(first, first.submit(IngestJob("ok", (("a", "a.md"),), "acme")))
    _wait(first, first.submit(IngestJob("bad", ())))
    first.close()
    second = InProcessJobQueue(handler, path=path)
    try:
        ok, bad = second.status("ok"), second.status("bad")
        counts, dead = second.counts(), second.dead_letters()
    finally:
        second.close()
    assert calls == ["ok", "bad"]
    assert ok is not None
    assert (ok.state, ok.tenant, ok.documents) == (JobState.SUCCEEDED, "acme", 1)
    assert bad is not None
    assert bad.state is JobState.FAILED
    assert (counts[JobState.SUCCEEDED], counts[JobState.FAILED]) == (1, 1)
    assert dead == ["bad"]


def test_a_graceful_stop_checkpoints_the_running_job_without_spending_an_attempt(
    tmp_path: Path,
) -> None:
    """`close()` makes the running job's next progress report raise; the job is queued
    again and the next queue runs it from the start (ingest skips what was done)."""
    path, started, reports = tmp_path / "jobs.sqlite3", threading.Event(), []

    def endless(job: IngestJob, progress: ProgressSink) -> JobStatus:
        started.set()
        for done in range(10_000):
            progress(IngestProgress(files_total=10_000, files_done=done))
            reports.append(done)
            time.sleep(0.001)
        return JobStatus(job.id, JobState.SUCCEEDED)

    first = InProcessJobQueue(endless, max_attempts=1, path=path)
    first.submit(IngestJob("long", ()))
    first.submit(IngestJob("waiting", ()))
    assert started.wait(10)
    first.close()
    stopped_after = len(reports)
    second = InProcessJobQueue(_succeed, max_attempts=1, path=path)
    try:
        long, waiting = _wait(second, "long"), _wait(second, "waiting")
    finally:
        second.close()
    assert stopped_after < 10_000
    # max_attempts=1: had the stop spent the attempt, the job would have failed here
    assert (long.state, long.attempts) == (JobState.SUCCEEDED, 1)
    assert (waiting.state, waiting.attempts) == (JobState.SUCCEEDED, 1)


def test_a_job_whose_last_attempt_died_with_the_process_fails_instead_of_looping(
    tmp_path: Path,
) -> None:
    path, stuck, release = tmp_path / "jobs.sqlite3", threading.Event(), threading.Event()

    def hang(job: IngestJob, progress: ProgressSink) -> JobStatus:
        stuck.set()
        release.wait(30)
        return JobStatus(job.id, JobState.SUCCEEDED)

    first = InProcessJobQueue(hang, max_attempts=1, path=path)
    try:
        first.submit(IngestJob("poison", ()))
        assert stuck.wait(10)
        _wait_running(first, "poison")
        second = InProcessJobQueue(_succeed, max_attempts=1, path=path)
        try:
            status = _wait(second, "poison")
            dead = second.dead_letters()
        finally:
            second.close()
    finally:
        release.set()
        first.close()
    assert (status.state, status.attempts) == (JobState.FAILED, 1)
    assert status.errors == {"job": "interrupted"}
    assert dead == ["poison"]
