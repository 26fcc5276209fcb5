"""Per-principal limits, and a bound on the generations this process runs at once.

- `RateLimiter`: requests per minute (a moving window) and LLM tokens per UTC day (a
  fixed window keyed by the date) for each principal (tenant + key id), counted by the
  `limits` library in memory (one process) or on Redis (`RAG_LIMITS__STORAGE_URL`, shared
  by every replica). Over a limit: `RateLimitedError` (429) with a `retry_after_s`.
- `GenerationGate`: at most `max_concurrent` generations run, `max_queued` more wait a
  short while; anything beyond is refused at once with `OverloadedError` (503), so a burst
  sheds load instead of piling up requests that would time out anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.errors import ConfigurationError, StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from core.errors import ConfigError, OverloadedError, RateLimitedError
from core.settings import LimitSettings
from core.types import Principal

logger = logging.getLogger(__name__)

#: After a storage failure, checks skip the storage this long instead of paying a failed
#: connection on every request (and logging each one).
STORAGE_PAUSE_S = 5.0
#: Redis socket timeouts unless the URL sets its own (`?socket_timeout=...`): a Redis on
#: the same network answers in a millisecond; a dead one must not stall requests.
REDIS_TIMEOUT_S = 0.5
_PLAIN_REDIS = ("redis", "rediss", "redis+unix")


def _storage_options(url: str, key_prefix: str) -> dict[str, Any]:
    scheme = urlsplit(url).scheme
    options: dict[str, Any] = {"wrap_exceptions": True}  # every backend error: StorageError
    if scheme.startswith(("redis", "valkey")):
        options["key_prefix"] = key_prefix
    if scheme in _PLAIN_REDIS:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options["socket_timeout"] = REDIS_TIMEOUT_S
        options["socket_connect_timeout"] = REDIS_TIMEOUT_S
        # redis-py retries 3 times with up to seconds of backoff by default; a rate limit
        # check would rather fail open at once.
        options["retry"] = Retry(NoBackoff(), 0)
    return options


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


class RateLimiter:
    """Requests per minute and tokens per day, per principal.

    Fails open: when the storage fails (Redis down, a timeout), the request goes through
    with a warning in the log, and the storage is left alone for `STORAGE_PAUSE_S`. An
    outage of the limiter must not become an outage of the API. `enabled=False` makes every
    check a no-op. `key_prefix` namespaces the keys on Redis (tests, several deployments).
    """

    def __init__(self, settings: LimitSettings, *, key_prefix: str = "rag-limits") -> None:
        self._enabled = settings.enabled
        self._settings = settings
        self._per_minute = RateLimitItemPerMinute(settings.requests_per_minute)
        self._per_day = RateLimitItemPerDay(settings.tokens_per_day)
        self._paused_until = 0.0
        self._storage: Storage | None = None
        if not self._enabled:
            return
        url = settings.storage_url
        try:
            storage = storage_from_string(url, **_storage_options(url, key_prefix))
            if not isinstance(storage, Storage):  # an `async+...` URL
                raise ConfigurationError("an async storage cannot serve synchronous checks")
            self._requests = MovingWindowRateLimiter(storage)
            self._tokens = FixedWindowRateLimiter(storage)
        except (ConfigurationError, NotImplementedError) as exc:
            raise ConfigError(
                f"RAG_LIMITS__STORAGE_URL={url!r}: use memory:// or redis://host:6379/1 ({exc})"
            ) from exc
        self._storage = storage

    def check_request(self, principal: Principal) -> None:
        """Count one request; `RateLimitedError` when the principal is over its rate."""
        if not self._active():
            return
        who = (principal.tenant, principal.key_id)
        try:
            if self._requests.hit(self._per_minute, "requests", *who):
                return
            stats = self._requests.get_window_stats(self._per_minute, "requests", *who)
        except StorageError as exc:
            self._fail_open(exc)
            return
        retry = _seconds_until(stats.reset_time)
        raise RateLimitedError(
            f"over {self._settings.requests_per_minute} requests per minute; retry in {retry} s",
            retry_after_s=retry,
        )

    def check_tokens(self, principal: Principal) -> None:
        """`RateLimitedError` when the principal has used up today's (UTC) LLM tokens."""
        if not self._active():
            return
        now = datetime.now(UTC)
        try:
            left = self._tokens.test(self._per_day, *self._token_key(principal, now))
        except StorageError as exc:
            self._fail_open(exc)
            return
        if left:
            return
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        retry = _seconds_until(midnight.timestamp())
        raise RateLimitedError(
            f"the daily quota of {self._settings.tokens_per_day} LLM tokens is used up; "
            f"it renews at 00:00 UTC (in {retry} s)",
            retry_after_s=retry,
        )

    def record_tokens(self, principal: Principal, tokens: int) -> None:
        """Add tokens an answer used to the principal's day, even past the quota: the call
        was made, so it counts, and the next `check_tokens` refuses."""
        if tokens <= 0 or not self._active():
            return
        key = self._token_key(principal, datetime.now(UTC))
        try:
            # A fixed window's `hit` increments before it compares (limits' INCRBY), so the
            # count goes on past the limit; its result only says whether it was still under.
            self._tokens.hit(self._per_day, *key, cost=tokens)
        except StorageError as exc:
            self._fail_open(exc)

    @staticmethod
    def _token_key(principal: Principal, now: datetime) -> tuple[str, ...]:
        return ("tokens", principal.tenant, principal.key_id, now.date().isoformat())

    def _active(self) -> bool:
        return self._enabled and time.monotonic() >= self._paused_until

    def _fail_open(self, exc: StorageError) -> None:
        self._paused_until = time.monotonic() + STORAGE_PAUSE_S
        logger.warning(
            "rate limit storage failed (%s); letting requests through unchecked for %.0f s",
            exc.storage_error,
            STORAGE_PAUSE_S,
        )

    def close(self) -> None:
        # Redis storages hold their client in `.storage`; the memory one holds a Counter.
        client = getattr(self._storage, "storage", None)
        close = getattr(client, "close", None)
        if callable(close):
            close()


class GenerationGate:
    """Bounds the generations in flight in this process (asyncio; one event loop).

    `async with gate.slot():` runs at once while fewer than `max_concurrent` run; else it
    waits in a queue of `max_queued` for at most `timeout_s`. A full queue, or a wait that
    times out, raises `OverloadedError` at once. A freed slot goes straight to the oldest
    waiter; a waiter that is cancelled or times out gives its place (or a slot it was just
    handed) back.
    """

    def __init__(self, max_concurrent: int, max_queued: int, timeout_s: float) -> None:
        if max_concurrent < 1 or max_queued < 0 or timeout_s <= 0:
            raise ConfigError(
                "generation gate: max_concurrent >= 1, max_queued >= 0 and timeout_s > 0"
            )
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        self._timeout_s = timeout_s
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: What a refused caller is told: by then the queue has turned over at least once.
        self._retry_after_s = max(1.0, float(math.ceil(timeout_s)))

    @property
    def in_flight(self) -> int:
        """Generations holding a slot now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests queued for a slot now."""
        return len(self._waiters)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self._running < self._max_concurrent and not self._waiters:
            self._running += 1
            return
        if len(self._waiters) >= self._max_queued:
            raise OverloadedError(
                f"{self._running} generations running and {len(self._waiters)} waiting; "
                "retry shortly",
                retry_after_s=self._retry_after_s,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout_s):
                await waiter
        except TimeoutError:
            self._abandon(waiter)
            raise OverloadedError(
                f"no generation slot within {self._timeout_s:g} s; retry shortly",
                retry_after_s=self._retry_after_s,
            ) from None
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        """A waiter gives up: leave the queue, or pass on the slot it was handed meanwhile."""
        if waiter.done() and not waiter.cancelled():
            self._release()  # the slot came just as the wait ended: it is ours to pass on
            return
        waiter.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _release(self) -> None:
        # Hand the slot to the oldest live waiter; `_running` stays the same.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._running -= 1
