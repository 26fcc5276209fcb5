"""Rate limits on the real Redis at 127.0.0.1:6379: two replicas share one count, and a
dead or silent Redis lets requests through (fail open) without stalling them.

Skips with a reason where no Redis runs; under CI (CI=true) it must run, never skip.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from auth.limits import RateLimiter
from core.errors import RateLimitedError
from core.settings import LimitSettings
from core.types import Principal, Role
from tests.services import REDIS_URL, redis_namespace

pytestmark = pytest.mark.integration
ALICE = Principal("acme", Role.READER, (), "0123456789ab")
BOB = Principal("acme", Role.READER, (), "ba9876543210")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of our own on db 0, its keys deleted afterwards."""
    with redis_namespace("rag-test-limits") as name:
        yield name


def _replicas(
    prefix: str, requests_per_minute: int = 60, tokens_per_day: int = 1000
) -> list[RateLimiter]:
    settings = LimitSettings(
        storage_url=REDIS_URL,
        requests_per_minute=requests_per_minute,
        tokens_per_day=tokens_per_day,
    )
    return [RateLimiter(settings, key_prefix=prefix) for _ in range(2)]


def test_two_replicas_share_one_request_count(prefix: str) -> None:
    one, two = _replicas(prefix, requests_per_minute=5)
    try:
        for i in range(5):
            (one if i % 2 else two).check_request(ALICE)
        for replica in (one, two):
            with pytest.raises(RateLimitedError) as refused:
                replica.check_request(ALICE)
            assert 1 <= refused.value.retry_after_s <= 60
        two.check_request(BOB)  # another principal has its own count
    finally:
        one.close()
        two.close()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
    client.close()
    assert keys, "the counts live under our key prefix"
    assert all(k.startswith(f"{prefix}:") for k in keys)


def test_two_replicas_share_one_token_quota(prefix: str) -> None:
    one, two = _replicas(prefix, tokens_per_day=1000)
    try:
        one.record_tokens(ALICE, 700)
        two.check_tokens(ALICE)
        two.record_tokens(ALICE, 700)
        for replica in (one, two):
            with pytest.raises(RateLimitedError, match="daily quota"):
                replica.check_tokens(ALICE)
        one.check_tokens(BOB)
    finally:
        one.close()
        two.close()


def _lets_everything_through(limiter: RateLimiter) -> float:
    started = time.monotonic()
    for _ in range(20):
        limiter.check_request(ALICE)
        limiter.record_tokens(ALICE, 10_000)
        limiter.check_tokens(ALICE)
    return time.monotonic() - started


def test_a_dead_redis_fails_open_at_once(caplog: pytest.LogCaptureFixture) -> None:
    settings = LimitSettings(
        storage_url="redis://127.0.0.1:1/0", requests_per_minute=1, tokens_per_day=1
    )
    limiter = RateLimiter(settings)
    caplog.set_level(logging.WARNING, logger="auth.limits")
    try:
        assert _lets_everything_through(limiter) < 2.0
    finally:
        limiter.close()
    warnings = [r for r in caplog.records if "letting requests through" in r.getMessage()]
    assert len(warnings) == 1  # once per pause, not once per request


def test_a_silent_redis_fails_open_after_the_socket_timeout() -> None:
    """A peer that accepts connections and never answers: the socket timeout bounds it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = LimitSettings(
            storage_url=f"redis://127.0.0.1:{port}/0", requests_per_minute=1, tokens_per_day=1
        )
        limiter = RateLimiter(settings)
        try:
            assert _lets_everything_through(limiter) < 2.0
        finally:
            limiter.close()
