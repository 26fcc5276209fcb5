"""Background ingest jobs: the `JobQueue` port's in-process adapter.

A worker thread runs jobs one at a time. A job that raises a transient error (the store
or a model being unavailable) is retried with exponential backoff and jitter; after
`max_attempts` it is marked failed and kept in the dead-letter list with its reason.
Per-file problems are not errors of the job: they end it as `partial`, with reasons.
Jobs are idempotent (deterministic chunk ids, the manifest), so a retry never
duplicates. Several API replicas need a shared queue: a Redis-backed adapter of the
same port is the production counterpart (not built yet; tracked in the ingestion issue).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from core.errors import ModelUnavailableError, StoreError
from core.types import IngestJob, JobState, JobStatus

log = logging.getLogger(__name__)

#: Errors worth a retry: the job may succeed once the dependency is back.
TRANSIENT = (StoreError, ModelUnavailableError, OSError, TimeoutError)


def new_job_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class InProcessJobQueue:
    """`JobQueue` on a thread and a `queue.Queue`; state lives in this process."""

    def __init__(
        self,
        handler: Callable[[IngestJob], JobStatus],
        max_attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self._handler = handler
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._jobs: queue.Queue[IngestJob | None] = queue.Queue()
        self._status: dict[str, JobStatus] = {}
        self._dead: list[str] = []
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="ingest-jobs", daemon=True)
        self._worker.start()

    def submit(self, job: IngestJob) -> str:
        with self._lock:
            self._status[job.id] = JobStatus(job.id, JobState.QUEUED, updated_at=_now())
        self._jobs.put(job)
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            return self._status.get(job_id)

    def dead_letters(self) -> list[str]:
        with self._lock:
            return list(self._dead)

    def _set(self, status: JobStatus) -> None:
        status.updated_at = _now()
        with self._lock:
            self._status[status.id] = status

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._attempt(job)

    def _fail(self, job: IngestJob, attempt: int, exc: BaseException) -> None:
        self._set(
            JobStatus(
                job.id,
                JobState.FAILED,
                attempts=attempt,
                errors={"job": f"{type(exc).__name__}: {exc}"},
            )
        )
        with self._lock:
            self._dead.append(job.id)

    def _attempt(self, job: IngestJob) -> None:
        for attempt in range(1, self._max_attempts + 1):
            self._set(JobStatus(job.id, JobState.RUNNING, attempts=attempt))
            try:
                result = self._handler(job)
            except TRANSIENT as exc:
                log.warning("job %s attempt %d failed: %s", job.id, attempt, exc)
                if attempt == self._max_attempts:
                    self._fail(job, attempt, exc)
                    return
                delay = self._backoff_s * 2 ** (attempt - 1)
                time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto
                continue
            except Exception as exc:  # a bug, not an outage: no retry, but the worker lives on
                log.exception("job %s failed", job.id)
                self._fail(job, attempt, exc)
                return
            result.attempts = attempt
            self._set(result)
            return

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(timeout=30)
