from __future__ import annotations

import pytest

from hub.config import RetryPolicy
from hub.jobs.runner import backoff_seconds

POLICY = RetryPolicy(max_attempts=6, min_backoff_seconds=1.0, max_backoff_seconds=10.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)]
)
def test_backoff_doubles_with_jitter(attempt: int, ceiling: float) -> None:
    delays = [backoff_seconds(POLICY, attempt) for _ in range(200)]

    assert min(delays) >= ceiling / 2
    assert max(delays) <= ceiling


def test_backoff_is_capped() -> None:
    delays = [backoff_seconds(POLICY, 30) for _ in range(200)]

    assert max(delays) <= POLICY.max_backoff_seconds


def test_backoff_honours_retry_after() -> None:
    assert backoff_seconds(POLICY, 1, retry_after=7.0) >= 7.0


def test_retry_after_is_capped_too() -> None:
    assert backoff_seconds(POLICY, 1, retry_after=3600.0) <= POLICY.max_backoff_seconds
