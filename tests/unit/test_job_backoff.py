"""The in-process job queue's backoff (on tenacity): exponential, jittered, uncapped."""

from __future__ import annotations

import pytest
from tenacity import RetryCallState, Retrying

from ingest.jobs import job_backoff


@pytest.mark.parametrize("retry", [1, 2, 3, 6])
def test_each_wait_is_the_exponential_step_times_a_factor_in_half_to_one_and_a_half(
    retry: int,
) -> None:
    wait = job_backoff(0.5)
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = retry
    step = 0.5 * 2 ** (retry - 1)
    waits = [wait(state) for _ in range(400)]
    assert all(0.5 * step <= w <= 1.5 * step for w in waits)
    assert min(waits) < 0.6 * step  # the whole range is used: real jitter
    assert max(waits) > 1.4 * step
