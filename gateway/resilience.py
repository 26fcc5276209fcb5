"""Retries with jittered backoff, and a circuit breaker per provider.

Only transient failures are retried (`ProviderError.transient`: 429, 5xx, timeouts,
refused connections); a 4xx or a malformed reply fails at once so the gateway moves to
the next model. "Full jitter" (a uniform wait in [0, base * 2^attempt], capped) spreads
retries of many clients instead of synchronising them on a struggling provider.

The breaker opens after `failures` consecutive failures and stays open for `reset_s`;
then it lets one trial call through (half-open): success closes it, failure re-opens it.
While open, the provider is skipped without a network call, so a dead model costs
nothing per request instead of a timeout per request.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from core.errors import CircuitOpenError, ProviderError

T = TypeVar("T")


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_s, base_s * 2**attempt)]."""
    return rng.uniform(0.0, min(max_s, base_s * (2**attempt)))


def call_with_retries(
    call: Callable[[], T],
    retries: int,
    base_s: float,
    max_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, ProviderError], None] | None = None,
) -> T:
    """Run `call`; retry transient `ProviderError`s up to `retries` times, then re-raise."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    attempt = 0
    while True:
        try:
            return call()
        except ProviderError as exc:
            if not exc.transient or attempt >= retries:
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(backoff_delay(attempt, base_s, max_s, rng))
            attempt += 1


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Consecutive-failure breaker; thread-safe (the API serves requests on a pool)."""

    def __init__(
        self,
        name: str,
        failures: int = 3,
        reset_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def acquire(self) -> None:
        """Raise CircuitOpenError unless a call may go through now."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.HALF_OPEN and not self._trial_running:
                self._trial_running = True  # exactly one trial call
                return
        raise CircuitOpenError(f"{self.name}: circuit open after repeated failures")

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self._threshold:
                self._opened_at = self._clock()
            self._trial_running = False

    def call(self, fn: Callable[[], T]) -> T:
        """`fn` through the breaker: only provider failures count against it."""
        self.acquire()
        try:
            result = fn()
        except ProviderError:
            self.failure()
            raise
        except BaseException:
            self.release()  # not the provider's fault: neither a failure nor a success
            raise
        self.success()
        return result

    def release(self) -> None:
        with self._lock:
            self._trial_running = False
