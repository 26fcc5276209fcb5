"""Background ingest jobs: the `JobQueue` port's adapters, in-process and Redis.

A worker thread runs jobs one at a time. A job that raises a transient error (the store,
a model, the disk or the queue's own Redis being unavailable) is retried with exponential
backoff and jitter, capped at MAX_BACKOFF_S; once it has had `max_attempts` and
`retry_window_s` has passed since its first failure, it is marked failed and kept in the
dead-letter list with its reason. An outage is measured in seconds, not attempts: three
quick tries would dead-letter a job during a restart of the store that takes a minute.
Per-file problems are not errors of the job: they end it as `partial`, with reasons.
Jobs are idempotent (deterministic chunk ids, the manifest), so a retry never
duplicates. Several API replicas need a shared queue: `RedisJobQueue` below is the
production adapter of the same port (docs/adr/0008-job-queue.md).

The in-process queue keeps its jobs in a SQLite file (`data_dir/jobs.sqlite3`): a job is
written before `submit` returns, and a queue opened on the file re-enqueues every job
that was queued or running when the last process stopped, so a restart resumes them.
Stopping is cooperative: `close()` makes the running job's progress sink raise
`JobInterrupted`, the pipeline finishes what it already parsed, and the job goes back
to `queued` without spending an attempt. A process killed outright spends the running
job's attempt instead, so a file that kills the process cannot loop forever.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from core.errors import (
    ConfigError,
    ModelUnavailableError,
    QueueError,
    RagError,
    StorageFullError,
    StoreError,
)
from core.ports import JobHandler, ProgressSink
from core.types import DEFAULT_TENANT, IngestJob, IngestProgress, JobState, JobStatus

log = logging.getLogger(__name__)

#: Errors worth a retry: the job may succeed once the dependency is back (or the disk has
#: room again: SQLite says "database or disk is full" with an OperationalError).
TRANSIENT = (
    StoreError,
    StorageFullError,
    ModelUnavailableError,
    OSError,
    TimeoutError,
    sqlite3.OperationalError,
)


def new_job_id() -> str:
    return uuid.uuid4().hex


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


#: The longest wait between two tries of a job, in seconds.
MAX_BACKOFF_S = 30.0


def job_backoff(base_s: float) -> wait_base:
    """The wait before retry n (from 1): uniform in [0.5, 1.5] x base_s x 2^(n-1) until
    that reaches MAX_BACKOFF_S, then within [MAX_BACKOFF_S / 2, MAX_BACKOFF_S]; tenacity's
    strategies summed: a fixed half plus full jitter over the other half."""
    half = MAX_BACKOFF_S / 2
    return wait_exponential(multiplier=base_s / 2, max=half) + wait_random_exponential(
        multiplier=base_s, max=half
    )


#: Seconds between two progress writes of one job to its store (SQLite or Redis).
PROGRESS_INTERVAL_S = 0.5


class JobInterrupted(Exception):  # noqa: N818 - a stop request, not an error
    """Raised by a stopping queue's progress sink inside the running job: the job unwinds
    (the pipeline writes what it parsed) and is queued again for the next start."""


#: The in-process queue's table: one row per job, the job itself and its last status.
_JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    job        TEXT NOT NULL,
    state      TEXT NOT NULL,
    status     TEXT NOT NULL,
    dead       INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""


class InProcessJobQueue:
    """`JobQueue` on a thread, with jobs and states in SQLite (`path`; None: in memory).

    Only one process may use a file at a time: the API that owns the data folder.
    """

    def __init__(
        self,
        handler: JobHandler,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        path: Path | None = None,
        ttl_s: float = 7 * 24 * 3600,
        retry_window_s: float = 0.0,
    ) -> None:
        self._handler = handler
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._retry_window_s = retry_window_s
        self._jobs: queue.Queue[IngestJob | None] = queue.Queue()
        self._live: dict[str, JobStatus] = {}  # running jobs' latest progress
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path or ":memory:", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an accepted job survives a power cut
        self._db.executescript(_JOBS_SCHEMA)
        self._forget_before(datetime.now(UTC) - timedelta(seconds=ttl_s))
        for job in self._resumable():
            self._jobs.put(job)
        self._worker = threading.Thread(target=self._run, name="ingest-jobs", daemon=True)
        self._worker.start()

    def _forget_before(self, cutoff: datetime) -> None:
        """Finished jobs older than the TTL (Redis expires them the same way)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM jobs WHERE state NOT IN ('queued', 'running') AND updated_at < ?",
                (cutoff.isoformat(timespec="seconds"),),
            )

    def _resumable(self) -> list[IngestJob]:
        """Jobs a previous process left queued or running, queued again in their order.
        A job that was running spent an attempt (the process died under it); one that
        has no attempt left fails instead of being tried again."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job, status FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq"
            ).fetchall()
        jobs = []
        for raw_job, raw_status in rows:
            job, status = _job_from_dict(json.loads(raw_job)), _status_from_json(raw_status)
            if status.state is JobState.RUNNING and status.attempts >= self._max_attempts:
                interrupted = RuntimeError("the process stopped during its last attempt")
                self._fail(job, status.attempts, interrupted, reason="interrupted")
                continue
            self._set(JobStatus(job.id, JobState.QUEUED, job.tenant, attempts=status.attempts))
            jobs.append(job)
        if jobs:
            log.info("resuming %d unfinished ingest job(s)", len(jobs))
        return jobs

    def submit(self, job: IngestJob) -> str:
        status = JobStatus(job.id, JobState.QUEUED, tenant=job.tenant, updated_at=_now())
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO jobs (id, job, state, status, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        job.id,
                        json.dumps(_job_to_dict(job)),
                        status.state.value,
                        _status_to_json(status),
                        status.updated_at,
                    ),
                )
        except sqlite3.OperationalError as exc:  # a full disk, a locked file: not accepted
            raise QueueError(f"the job queue cannot record the job: {exc}") from exc
        self._jobs.put(job)
        return job.id

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            if job_id in self._live:
                return self._live[job_id]
            row = self._db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _status_from_json(row[0])

    def dead_letters(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE dead = 1 ORDER BY seq").fetchall()
        return [row[0] for row in rows]

    def counts(self) -> dict[JobState, int]:
        with self._lock:
            found = dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        return {state: int(found.get(state.value, 0)) for state in JobState}

    def _set(self, status: JobStatus, *, dead: bool = False, write: bool = True) -> None:
        """Record a status: in memory while the job runs, in the file on every change of
        state (`write=False`: a progress step, kept in memory only)."""
        status.updated_at = _now()
        with self._lock:
            if status.state is JobState.RUNNING:
                self._live[status.id] = status
            else:
                self._live.pop(status.id, None)
            if not write:
                return
            try:
                self._db.execute(
                    "UPDATE jobs SET state = ?, status = ?, dead = ?, updated_at = ? WHERE id = ?",
                    (
                        status.state.value,
                        _status_to_json(status),
                        int(dead),
                        status.updated_at,
                        status.id,
                    ),
                )
            except sqlite3.OperationalError as exc:  # a full disk: answer from memory
                log.warning("job %s: state %s not saved: %s", status.id, status.state, exc)
                self._live[status.id] = status

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None and not self._stopping.is_set():
            self._attempt(job)

    def _fail(
        self, job: IngestJob, attempt: int, exc: BaseException, reason: str | None = None
    ) -> None:
        errors = {"job": reason or _reason(exc)}
        self._set(
            JobStatus(job.id, JobState.FAILED, job.tenant, attempts=attempt, errors=errors),
            dead=True,
        )

    def _retrying(self, job: IngestJob, attempts_left: int) -> Retrying:
        """Transient errors retried with `job_backoff` until both `max_attempts` in all
        and `retry_window_s` are spent."""

        def logged(state: RetryCallState) -> None:  # every transient failure, the last too
            error = state.outcome.exception() if state.outcome else None
            log.warning("job %s attempt %d failed: %s", job.id, state.attempt_number, error)

        return Retrying(
            stop=stop_after_attempt(attempts_left) & stop_after_delay(self._retry_window_s),
            wait=job_backoff(self._backoff_s),
            retry=retry_if_exception_type(TRANSIENT),
            after=logged,
            reraise=True,
        )

    def _attempt(self, job: IngestJob) -> None:
        before = self.status(job.id)
        spent = before.attempts if before else 0  # by processes that died running it
        attempt = spent
        try:
            for trial in self._retrying(job, max(1, self._max_attempts - spent)):
                with trial:
                    attempt = spent + trial.retry_state.attempt_number
                    self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempts=attempt))
                    result = self._handler(job, self._progress(job, attempt))
        except JobInterrupted:  # the queue is closing: this attempt does not count
            log.info("job %s interrupted by shutdown; it resumes at the next start", job.id)
            self._set(JobStatus(job.id, JobState.QUEUED, job.tenant, attempts=attempt - 1))
            return
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
        """Progress kept in memory, written to the file at most every PROGRESS_INTERVAL_S.
        Once the queue is closing, the next report raises `JobInterrupted` (once: the
        pipeline reports again while it writes what it had parsed)."""
        last, interrupted = [0.0], [False]

        def report(progress: IngestProgress) -> None:
            if self._stopping.is_set() and not interrupted[0]:
                interrupted[0] = True
                raise JobInterrupted(job.id)
            now = time.monotonic()
            write = now - last[0] >= PROGRESS_INTERVAL_S
            if write:
                last[0] = now
            status = JobStatus(job.id, JobState.RUNNING, job.tenant, attempt, progress=progress)
            self._set(status, write=write)

        return report

    def start_worker(self, threads: int = 1) -> None:
        raise ConfigError(
            "`rag worker` serves RAG_JOBS__BACKEND=redis; the in-process queue runs its "
            "worker inside `rag serve`"
        )

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop after the running job reaches a checkpoint (its next progress report);
        queued jobs stay in the file for the next start."""
        self._stopping.set()
        self._jobs.put(None)
        self._worker.join(timeout=timeout_s)
        if self._worker.is_alive():  # a file still parsing: its job resumes next start
            log.warning("the running ingest job did not stop within %.0f s", timeout_s)
            return
        with self._lock:
            self._db.close()


#: Per million broker calls: how often a worker sweeps dead workers' jobs back.
MAINTENANCE_CHANCE = 10_000

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


def _status_to_json(status: JobStatus) -> str:
    return json.dumps({**asdict(status), "state": status.state.value})


def _status_from_json(raw: str | bytes) -> JobStatus:
    data = json.loads(raw)
    data["state"] = JobState(data["state"])
    data["progress"] = IngestProgress(**data.get("progress") or {})
    return JobStatus(**data)


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
        heartbeat_timeout_s: float = 60.0,
        retry_window_s: float = 0.0,
    ) -> None:
        import dramatiq
        import redis
        from dramatiq.brokers.redis import RedisBroker
        from dramatiq.middleware import CurrentMessage

        self._redis = redis.Redis.from_url(url)
        self._errors = (redis.RedisError, dramatiq.errors.DramatiqError)
        self._broker = RedisBroker(  # type: ignore[no-untyped-call]  # untyped in dramatiq
            url=url,
            namespace=f"{namespace}-dramatiq",
            heartbeat_timeout=int(heartbeat_timeout_s * 1000),
            # The sweep that re-queues a dead worker's jobs runs on this share of broker
            # calls (per million). Dramatiq's 1,000 means about one sweep a minute from an
            # idle worker, on top of the heartbeat timeout; 10,000 makes it a few seconds.
            maintenance_chance=MAINTENANCE_CHANCE,
        )
        # A job's first failure is kept in its message's options, which travel with its
        # retries from worker to worker: the retry window is the job's, not a process's.
        self._broker.add_middleware(CurrentMessage())
        self._current = CurrentMessage.get_current_message
        self._gave_up = threading.local()  # the verdict of `_run`, read by `_retry_when`
        self._retry_window_s = retry_window_s
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
            max_backoff=int(MAX_BACKOFF_S * 1000),
            retry_when=self._retry_when,
        )

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _set(self, status: JobStatus) -> None:
        """Write a job's status and move it between the per-state counters, atomically
        (a script: replicas and workers write concurrently)."""
        status.updated_at = _now()
        payload = _status_to_json(status)
        self._transition(
            keys=[self._key(status.id), f"{self._prefix}:job-states"],
            args=[payload, self._ttl_s, status.state.value],
        )

    def _retry_when(self, retries: int, exc: BaseException) -> bool:
        """Dramatiq's question after a failed run, answered by that run (same thread)."""
        return not getattr(self._gave_up, "value", True)

    def _gives_up(self, exc: BaseException, attempt: int) -> bool:
        """A bug ends the job; an outage (Redis itself included) ends it only once it had
        `max_attempts` runs and `retry_window_s` has passed since its first failure."""
        if not isinstance(exc, (*TRANSIENT, *self._errors)):
            return True
        message = self._current()
        now = time.time()
        first = message.options.setdefault("first_failure_at", now) if message else now
        return attempt >= self._max_attempts and now - float(first) >= self._retry_window_s

    def _run(self, payload: dict[str, Any]) -> None:
        self._gave_up.value = True  # a payload that does not parse is not retried
        job = _job_from_dict(payload)
        attempt = 0  # unknown while Redis is down: such a run is retried
        try:
            attempt = int(cast(int, self._redis.hincrby(f"{self._prefix}:attempts", job.id, 1)))
            self._set(JobStatus(job.id, JobState.RUNNING, job.tenant, attempts=attempt))
            result = self._handler(job, self._progress(job, attempt))
        except Exception as exc:  # recorded here, re-raised for Dramatiq's retry/dead-letter
            final = self._gives_up(exc, attempt)
            state = JobState.FAILED if final else JobState.QUEUED
            errors = {"job": _reason(exc)}
            status = JobStatus(job.id, state, job.tenant, attempts=attempt, errors=errors)
            self._gave_up.value = self._settle(status, dead=final) and final
            raise
        result.attempts = attempt
        result.tenant = job.tenant
        self._gave_up.value = False
        if not self._settle(result):
            raise QueueError(f"job {job.id} ran, but Redis never came back to record it")

    def _settle(self, status: JobStatus, *, dead: bool = False) -> bool:
        """Write a run's outcome (and its dead letter). Redis down: wait for it, up to the
        retry window, since the retry Dramatiq sends next needs it too. False: never back."""
        deadline = time.monotonic() + max(self._retry_window_s, MAX_BACKOFF_S)
        while True:
            try:
                self._set(status)
                if dead:
                    self._redis.rpush(f"{self._prefix}:dead", status.id)
                return True
            except self._errors as exc:
                if time.monotonic() > deadline:
                    return False
                log.warning("job %s: waiting for Redis to record its outcome: %s", status.id, exc)
                time.sleep(1.0)

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
        return None if raw is None else _status_from_json(cast(bytes, raw))

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
        every embedding batch into a Redis write (the final status is always written).
        Progress is best effort: Redis going away mid-job does not stop the job."""
        last = [0.0]

        def report(progress: IngestProgress) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            status = JobStatus(job.id, JobState.RUNNING, job.tenant, attempt, progress=progress)
            try:
                self._set(status)
            except self._errors as exc:
                log.warning("job %s: progress not written (Redis unavailable): %s", job.id, exc)

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
