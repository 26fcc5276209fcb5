"""Per-principal limits in memory, and the generation gate under load and cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from auth.limits import GenerationGate, RateLimiter
from core.errors import ConfigError, OverloadedError, RateLimitedError
from core.settings import LimitSettings
from core.types import Principal, Role

ALICE = Principal("acme", Role.READER, (), "0123456789ab")
BOB = Principal("acme", Role.READER, (), "ba9876543210")
ALICE_ELSEWHERE = Principal("globex", Role.READER, (), "0123456789ab")


@pytest.fixture
def limiter() -> Iterator[RateLimiter]:
    limiter = RateLimiter(LimitSettings(requests_per_minute=3, tokens_per_day=1000))
    yield limiter
    limiter.close()


def test_the_request_over_the_rate_is_refused_with_a_retry_after(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check_request(ALICE)
    with pytest.raises(RateLimitedError, match="3 requests per minute") as refused:
        limiter.check_request(ALICE)
    assert 1 <= refused.value.retry_after_s <= 60


def test_principals_are_counted_apart(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.check_request(ALICE)
    for who in (BOB, ALICE_ELSEWHERE):
        for _ in range(3):
            limiter.check_request(who)
    for who in (ALICE, BOB, ALICE_ELSEWHERE):
        with pytest.raises(RateLimitedError):
            limiter.check_request(who)


def test_the_token_quota_runs_out_after_recorded_use(limiter: RateLimiter) -> None:
    limiter.check_tokens(ALICE)
    limiter.record_tokens(ALICE, 600)
    limiter.check_tokens(ALICE)
    limiter.record_tokens(ALICE, 600)  # counted in full, past the quota
    with pytest.raises(RateLimitedError, match="1000 LLM tokens") as refused:
        limiter.check_tokens(ALICE)
    assert 1 <= refused.value.retry_after_s <= 86_400
    limiter.check_tokens(BOB)
    limiter.record_tokens(BOB, 999)
    limiter.check_tokens(BOB)
    limiter.record_tokens(BOB, 1)
    with pytest.raises(RateLimitedError):
        limiter.check_tokens(BOB)


def test_disabled_limits_check_nothing() -> None:
    limiter = RateLimiter(LimitSettings(enabled=False, requests_per_minute=1, tokens_per_day=1))
    for _ in range(10):
        limiter.check_request(ALICE)
        limiter.record_tokens(ALICE, 1_000_000)
        limiter.check_tokens(ALICE)
    limiter.close()


def test_an_unknown_storage_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="RAG_LIMITS__STORAGE_URL"):
        RateLimiter(LimitSettings(storage_url="carrier-pigeon://coop"))


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


async def _until(condition: Callable[[], bool], deadline_s: float = 2.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


class Holder:
    """A generation that holds its slot until told to finish."""

    def __init__(self, gate: GenerationGate) -> None:
        self.gate = gate
        self.entered = asyncio.Event()
        self.finish = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with self.gate.slot():
            self.entered.set()
            await self.finish.wait()


def test_beyond_the_queue_a_request_is_refused_at_once() -> None:
    async def scenario() -> None:
        gate = GenerationGate(max_concurrent=1, max_queued=1, timeout_s=5)
        first = Holder(gate)
        await _until(first.entered.is_set)
        second = Holder(gate)
        await _until(lambda: gate.waiting == 1)
        started = time.monotonic()
        with pytest.raises(OverloadedError) as refused:
            async with gate.slot():
                raise AssertionError("the third request must not run")
        assert time.monotonic() - started < 0.5
        assert refused.value.retry_after_s >= 1
        assert (gate.in_flight, gate.waiting) == (1, 1)
        first.finish.set()
        await _until(second.entered.is_set)
        second.finish.set()
        await asyncio.gather(first.task, second.task)
        assert (gate.in_flight, gate.waiting) == (0, 0)

    _run(scenario)


def test_a_queued_request_times_out_with_overloaded() -> None:
    async def scenario() -> None:
        gate = GenerationGate(max_concurrent=1, max_queued=1, timeout_s=0.05)
        first = Holder(gate)
        await _until(first.entered.is_set)
        started = time.monotonic()
        with pytest.raises(OverloadedError, match="no generation slot within"):
            async with gate.slot():
                raise AssertionError("must not run while the first holds the slot")
        assert 0.04 <= time.monotonic() - started < 2
        assert (gate.in_flight, gate.waiting) == (1, 0)
        first.finish.set()
        await first.task
        assert gate.in_flight == 0
        async with gate.slot():  # the slot is free again
            assert gate.in_flight == 1

    _run(scenario)


def test_a_cancelled_waiter_frees_its_place_in_the_queue() -> None:
    async def scenario() -> None:
        gate = GenerationGate(max_concurrent=1, max_queued=1, timeout_s=5)
        first = Holder(gate)
        await _until(first.entered.is_set)
        second = Holder(gate)
        await _until(lambda: gate.waiting == 1)
        second.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second.task
        assert (gate.in_flight, gate.waiting) == (1, 0)
        third = Holder(gate)  # takes the freed place instead of being refused
        await _until(lambda: gate.waiting == 1)
        first.finish.set()
        await _until(third.entered.is_set)
        third.finish.set()
        await asyncio.gather(first.task, third.task)
        assert (gate.in_flight, gate.waiting) == (0, 0)

    _run(scenario)


def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_goes_to_the_next() -> None:
    async def scenario() -> None:
        gate = GenerationGate(max_concurrent=1, max_queued=2, timeout_s=5)
        held = gate.slot()
        await held.__aenter__()
        second, third = Holder(gate), Holder(gate)
        await _until(lambda: gate.waiting == 2)
        await held.__aexit__(None, None, None)  # hands the slot to `second`...
        second.task.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await second.task
        await _until(third.entered.is_set)
        assert (gate.in_flight, gate.waiting) == (1, 0)
        third.finish.set()
        await third.task
        assert gate.in_flight == 0

    _run(scenario)


def test_a_failing_generation_gives_its_slot_back() -> None:
    async def scenario() -> None:
        gate = GenerationGate(max_concurrent=1, max_queued=0, timeout_s=1)
        with pytest.raises(RuntimeError):
            async with gate.slot():
                raise RuntimeError("the model crashed")
        assert gate.in_flight == 0
        async with gate.slot():
            with pytest.raises(OverloadedError):  # no queue at all: refused at once
                async with gate.slot():
                    pass

    _run(scenario)
