"""Background ingest jobs: the `JobQueue` port's adapters, in-process and Redis.

A worker thread runs jobs one at a time. A job that raises a transient error (the store
or a model being unavailable) is retried with exponential backoff and jitter; after
`max_attempts` it is marked failed and kept in the dead-letter list with its reason.
Per-file problems are not errors of the job: they end it as `partial`, with reasons.
Jobs are idempotent (deterministic chunk ids, the manifest), so a retry never
duplicates. Several API replicas need a shared queue: `RedisJobQueue` below is the
production adapter of the same port (docs/adr/0008-job-queue.md).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from core.errors import ConfigError, ModelUnavailableError, QueueError, RagError, StoreError
from core.ports import JobHandler, ProgressSink
from core.types import DEFAULT_TENANT, IngestJob, IngestProgress, JobState, JobStatus

log = logging.getLogger(__name__)

#: Errors worth a retry: the job may succeed once the dependency is back.
TRANSIENT = (StoreError, ModelUnavailableError, OSError, TimeoutError)


def new_job_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def job_backoff(base_s: float) -> wait_base:
    """The wait before retry n (from 1): uniform in [0.5, 1.5] x base_s x 2^(n-1), no cap;
    tenacity's strategies summed: a fixed half plus full jitter over the other half."""
    return wait_exponential(multiplier=base_s / 2) + wait_random_exponential(multiplier=base_s)


class InProcessJobQueue:
    """`JobQueue` on a thread and a `queue.Queue`; state lives in this process."""

    def __init__(
        self,
        handler: JobHandler,
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
            self._status[job.id] = JobStatus(
                job.id, JobState.QUEUED, tenant=job.tenant, updated_at=_now()
            )
        self._jobs.put(job)
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            return self._status.get(job_id)

    def dead_letters(self) -> list[str]:
        with self._lock:
            return list(self._dead)

    def counts(self) -> dict[JobState, int]:
        with self._lock:
            found = Counter(status.state for status in self._status.values())
        return {state: found.get(state, 0) for state in JobState}

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
                tenant=job.tenant,
                attempts=attempt,
                errors={"job": _reason(exc)},
            )
        )
        with self._lock:
            self._dead.append(job.id)

    def _retrying(self, job: IngestJob) -> Retrying:
        """Transient errors retried with `job_backoff`, up to `max_attempts` in all."""

        def logged(state: RetryCallState) -> None:  # every transient failure, the last too
            error = state.outcome.exception() if state.outcome else None
            log.warning("job %s attempt %d failed: %s", job.id, state.attempt_number, error)

        return Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=job_backoff(self._backoff_s),
            retry=retry_if_exception_type(TRANSIENT),
            after=logged,
            reraise=True,
        )

    def _attempt(self, job: IngestJob) -> None:
        attempt = 0
        try:
            for trial in self._retrying(job):
                with trial:
                    attempt = trial.retry_state.attempt_number
                    self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempts=attempt))
                    result = self._handler(job, self._progress(job, attempt))
        except TRANSIENT as exc:  # still failing after the last attempt
            self._fail(job, attempt, exc)
            return
        except Exception as exc:  # a bug, not an outage: no retry, but the worker lives on
            log.exception("job %s failed", job.id)
            self._fail(job, attempt, exc)
            return
        result.attempts = attempt
        result.tenant = job.tenant
        self._set(result)

    def _progress(self, job: IngestJob, attempt: int) -> ProgressSink:
        def report(progress: IngestProgress) -> None:
            self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempt, progress=progress))

        return report

    def start_worker(self, threads: int = 1) -> None:
        raise ConfigError(
            "`rag worker` serves RAG_JOBS__BACKEND=redis; the in-process queue runs its "
            "worker inside `rag serve`"
        )

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(timeout=30)


#: Seconds between two progress writes of one job to Redis.
PROGRESS_INTERVAL_S = 0.5

#: Set a job's status and move it from its previous state's counter to the new one's.
_TRANSITION = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if old then
  redis.call('HINCRBY', KEYS[2], cjson.decode(old)['state'], -1)
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
"""


def _job_to_dict(job: IngestJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "files": [list(f) for f in job.files],
        "tenant": job.tenant,
        "access_groups": list(job.access_groups),
    }


def _job_from_dict(data: dict[str, Any]) -> IngestJob:
    return IngestJob(
        str(data["id"]),
        tuple((str(p), str(s)) for p, s in data["files"]),
        str(data.get("tenant") or DEFAULT_TENANT),
        tuple(data.get("access_groups") or ()),
    )


def _reason(exc: BaseException) -> str:
    """What a job's status says about a failure: its kind and message, never a path
    outside the job (a StoreError names the store; a bug names only its type)."""
    if isinstance(exc, RagError):
        return f"{type(exc).__name__}: {exc}"[:500]
    return f"{type(exc).__name__} (see the server log)"


class RedisJobQueue:
    """`JobQueue` on Dramatiq's Redis broker, for API replicas and separate workers.

    Dramatiq gives at-least-once delivery (a message is acknowledged only after the job
    ran; messages of a worker that died are re-queued by the broker's heartbeats),
    retries with exponential backoff and jitter, and a dead-letter queue. Job states
    live in Redis so any replica can answer `GET /v1/jobs/{id}`. Workers run in
    `rag worker` processes, or in-process with `start_worker` (tests).
    """

    QUEUE = "ingest"

    def __init__(
        self,
        url: str,
        handler: JobHandler,
        namespace: str = "rag",
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        import dramatiq
        import redis
        from dramatiq.brokers.redis import RedisBroker

        self._redis = redis.Redis.from_url(url)
        self._errors = (redis.RedisError, dramatiq.errors.DramatiqError)
        self._broker = RedisBroker(  # type: ignore[no-untyped-call]  # untyped in dramatiq
            url=url, namespace=f"{namespace}-dramatiq"
        )
        self._prefix = namespace
        self._transition = self._redis.register_script(_TRANSITION)
        self._handler = handler
        self._max_attempts = max_attempts
        self._ttl_s = ttl_s
        self._workers: list[Any] = []
        declare: Any = dramatiq.actor  # its overloads do not cover fn + options together
        self._actor = declare(
            self._run,
            broker=self._broker,
            actor_name="ingest_job",
            queue_name=self.QUEUE,
            min_backoff=int(backoff_s * 1000),
            max_backoff=int(backoff_s * 1000 * 2**max_attempts),
            retry_when=self._retry_when,
        )

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _set(self, status: JobStatus) -> None:
        """Write a job's status and move it between the per-state counters, atomically
        (a script: replicas and workers write concurrently)."""
        status.updated_at = _now()
        payload = json.dumps({**asdict(status), "state": status.state.value})
        self._transition(
            keys=[self._key(status.id), f"{self._prefix}:job-states"],
            args=[payload, self._ttl_s, status.state.value],
        )

    def _retry_when(self, retries: int, exc: BaseException) -> bool:
        return isinstance(exc, TRANSIENT) and retries + 1 < self._max_attempts

    def _run(self, payload: dict[str, Any]) -> None:
        job = _job_from_dict(payload)
        attempt = int(cast(int, self._redis.hincrby(f"{self._prefix}:attempts", job.id, 1)))
        self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempts=attempt))
        try:
            result = self._handler(job, self._progress(job, attempt))
        except Exception as exc:  # recorded here, re-raised for Dramatiq's retry/dead-letter
            final = not isinstance(exc, TRANSIENT) or attempt >= self._max_attempts
            state = JobState.FAILED if final else JobState.QUEUED
            self._set(
                JobStatus(job.id, state, job.tenant, attempts=attempt, errors={"job": _reason(exc)})
            )
            if final:
                self._redis.rpush(f"{self._prefix}:dead", job.id)
            raise
        result.attempts = attempt
        result.tenant = job.tenant
        self._set(result)

    def submit(self, job: IngestJob) -> str:
        try:
            self._set(JobStatus(job.id, JobState.QUEUED, job.tenant))
            self._actor.send(_job_to_dict(job))
        except self._errors as exc:
            raise QueueError(f"the job queue (Redis) is unavailable: {exc}") from exc
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        try:
            raw = self._redis.get(self._key(job_id))
        except self._errors as exc:
            raise QueueError(f"the job queue (Redis) is unavailable: {exc}") from exc
        if raw is None:
            return None
        data = json.loads(cast(bytes, raw))
        data["state"] = JobState(data["state"])
        data["progress"] = IngestProgress(**data.get("progress") or {})
        return JobStatus(**data)

    def counts(self) -> dict[JobState, int]:
        """From counters kept by `_set` (one HGETALL, not a scan of every job's key)."""
        try:
            raw = cast(dict[bytes, bytes], self._redis.hgetall(f"{self._prefix}:job-states"))
        except self._errors as exc:
            raise QueueError(f"the job queue (Redis) is unavailable: {exc}") from exc
        found = {k.decode(): max(int(v), 0) for k, v in raw.items()}
        return {state: found.get(state.value, 0) for state in JobState}

    def _progress(self, job: IngestJob, attempt: int) -> ProgressSink:
        """Progress written at most every PROGRESS_INTERVAL_S: a big job must not turn
        every embedding batch into a Redis write (the final status is always written)."""
        last = [0.0]

        def report(progress: IngestProgress) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempt, progress=progress))

        return report

    def dead_letters(self) -> list[str]:
        items: list[bytes] = self._redis.lrange(f"{self._prefix}:dead", 0, -1)  # type: ignore[assignment]
        return [item.decode() for item in items]

    def start_worker(self, threads: int = 1) -> None:
        """Consume the queue in this process (a `rag worker` does this in its own)."""
        import dramatiq

        worker = dramatiq.Worker(
            self._broker, queues={self.QUEUE}, worker_threads=threads, worker_timeout=100
        )
        worker.start()
        self._workers.append(worker)

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._broker.close()
        self._redis.close()
