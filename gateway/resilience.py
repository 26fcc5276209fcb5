"""Retries with jittered backoff (on tenacity), and a circuit breaker per provider.

Only transient failures are retried (`ProviderError.transient`: 429, 5xx, timeouts,
refused connections); a 4xx or a malformed reply fails at once so the gateway moves to
the next model. "Full jitter" (a uniform wait in [0, base * 2^attempt], capped: tenacity's
`wait_random_exponential`) spreads retries of many clients instead of synchronising them
on a struggling provider.

The breaker opens after `failures` consecutive failures and stays open for `reset_s`;
then it lets one trial call through (half-open): success closes it, failure re-opens it.
While open, the provider is skipped without a network call, so a dead model costs
nothing per request instead of a timeout per request. It is our own rather than
pybreaker's or purgatory's: docs/adr/0011 says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from core.errors import CircuitOpenError, ProviderError

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Worth a retry: a provider failure that says a later call may succeed."""
    return isinstance(exc, ProviderError) and exc.transient


def call_with_retries(
    call: Callable[[], T],
    retries: int,
    base_s: float,
    max_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, ProviderError], None] | None = None,
) -> T:
    """Run `call`; retry transient `ProviderError`s up to `retries` times with full-jitter
    backoff, then re-raise the last error. Anything else is raised at once.

    `sleep` is injectable so tests wait for nothing; `on_retry(n, error)` is told of retry
    `n` (from 0) before its wait.
    """

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            assert isinstance(error, ProviderError)  # only those are retried
            on_retry(state.attempt_number - 1, error)

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_random_exponential(multiplier=base_s, max=max_s),
        retry=retry_if_exception(is_transient),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(call)


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
