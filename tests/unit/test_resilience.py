"""Backoff, retries on transient errors only, and the circuit breaker's three states."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.errors import CircuitOpenError, ProviderError
from gateway.resilience import BreakerState, CircuitBreaker, call_with_retries


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state  # read through a call: mypy would narrow the property


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _failing(
    errors: list[ProviderError], result: str = "ok"
) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def test_full_jitter_stays_within_the_capped_exponential_bound() -> None:
    waits: list[list[float]] = [[] for _ in range(7)]
    for _ in range(200):
        sleeps: list[float] = []
        call, _ = _failing([ProviderError("503", transient=True, status=503)] * 7)
        call_with_retries(call, 7, 0.25, 2.0, sleep=sleeps.append)
        for retry, wait in enumerate(sleeps):
            waits[retry].append(wait)
    for retry, delays in enumerate(waits):
        bound = min(2.0, 0.25 * 2**retry)
        assert len(delays) == 200
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > bound * 0.8  # the whole range is used: real jitter
        assert min(delays) < bound * 0.2  # down to zero: full jitter, not equal jitter


def test_transient_errors_are_retried_then_succeed() -> None:
    sleeps: list[float] = []
    retried: list[tuple[int, str]] = []
    call, calls = _failing([ProviderError("429", transient=True, status=429)] * 2)
    result = call_with_retries(
        call, 2, 0.1, 1.0, sleep=sleeps.append, on_retry=lambda n, e: retried.append((n, str(e)))
    )
    assert result == "ok"
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert retried == [(0, "429"), (1, "429")]  # told before each wait, counted from 0


def test_errors_that_are_not_the_providers_are_raised_at_once() -> None:
    calls: list[int] = []

    def buggy() -> str:
        calls.append(1)
        raise KeyError("ours")

    with pytest.raises(KeyError, match="ours"):
        call_with_retries(buggy, 5, 0.0, 0.0, sleep=lambda _: None)
    assert len(calls) == 1


def test_retries_give_up_after_the_limit_with_the_last_error() -> None:
    errors = [ProviderError(f"503 #{n}", transient=True, status=503) for n in range(5)]
    call, calls = _failing(errors)
    with pytest.raises(ProviderError, match="503 #2"):  # the error itself, not a wrapper
        call_with_retries(call, 2, 0.0, 0.0, sleep=lambda _: None)
    assert len(calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_is_never_retried(status: int) -> None:
    call, calls = _failing([ProviderError(str(status), transient=False, status=status)])
    with pytest.raises(ProviderError):
        call_with_retries(call, 5, 0.0, 0.0, sleep=lambda _: None)
    assert len(calls) == 1


def test_the_breaker_opens_after_consecutive_failures_and_skips_calls() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=3, reset_s=30, clock=clock)
    call, calls = _failing([ProviderError("down", transient=True)] * 10)
    for _ in range(3):
        with pytest.raises(ProviderError):
            breaker.call(call)
    assert state(breaker) == BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.call(call)
    assert len(calls) == 3  # the open breaker did not call


def test_half_open_lets_one_trial_through_and_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=1, reset_s=10, clock=clock)
    with pytest.raises(ProviderError):
        breaker.call(_failing([ProviderError("x", transient=True)])[0])
    clock.now = 10.0
    assert state(breaker) == BreakerState.HALF_OPEN
    breaker.acquire()  # the trial
    with pytest.raises(CircuitOpenError):
        breaker.acquire()  # a second caller during the trial is refused
    breaker.success()
    assert state(breaker) == BreakerState.CLOSED


def test_a_failed_trial_reopens_for_a_full_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures=2, reset_s=10, clock=clock)
    for _ in range(2):
        with pytest.raises(ProviderError):
            breaker.call(_failing([ProviderError("x", transient=True)])[0])
    clock.now = 10.0
    with pytest.raises(ProviderError):
        breaker.call(_failing([ProviderError("still down", transient=True)])[0])
    assert state(breaker) == BreakerState.OPEN
    clock.now = 19.9
    assert state(breaker) == BreakerState.OPEN
    clock.now = 20.0
    assert state(breaker) == BreakerState.HALF_OPEN


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker("m", failures=2, reset_s=10, clock=Clock())
    with pytest.raises(ProviderError):
        breaker.call(_failing([ProviderError("x", transient=True)])[0])
    breaker.call(lambda: "ok")
    with pytest.raises(ProviderError):
        breaker.call(_failing([ProviderError("x", transient=True)])[0])
    assert state(breaker) == BreakerState.CLOSED
