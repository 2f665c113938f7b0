from __future__ import annotations

import dataclasses
import time

import pybreaker
import pytest

from hub.config import load_settings
from hub.errors import ProviderRejectedError, ProviderUnavailableError
from hub.jobs.breakers import Breakers

SETTINGS = dataclasses.replace(
    load_settings({}), breaker_fail_max=2, breaker_reset_seconds=1
)


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError("down", provider="rapyd")


def fail_once(breaker: pybreaker.CircuitBreaker, error: Exception) -> None:
    with pytest.raises(type(error)), breaker.calling():
        raise error


def test_outages_open_the_breaker() -> None:
    breaker = Breakers(SETTINGS).for_provider("rapyd")

    fail_once(breaker, outage())
    fail_once(breaker, outage())

    assert breaker.current_state == pybreaker.STATE_OPEN


def test_declines_do_not_open_the_breaker() -> None:
    breaker = Breakers(SETTINGS).for_provider("rapyd")

    for _ in range(3):
        fail_once(breaker, ProviderRejectedError("declined", provider="rapyd"))

    assert breaker.current_state == pybreaker.STATE_CLOSED


def test_open_breaker_blocks_calls() -> None:
    breaker = Breakers(SETTINGS).for_provider("rapyd")
    fail_once(breaker, outage())
    fail_once(breaker, outage())

    with pytest.raises(pybreaker.CircuitBreakerError), breaker.calling():
        pass


def test_breaker_closes_after_successful_trial() -> None:
    breaker = Breakers(SETTINGS).for_provider("rapyd")
    fail_once(breaker, outage())
    fail_once(breaker, outage())

    time.sleep(SETTINGS.breaker_reset_seconds + 0.1)
    with breaker.calling():
        pass

    assert breaker.current_state == pybreaker.STATE_CLOSED
