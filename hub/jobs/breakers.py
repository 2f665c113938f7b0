"""Per-provider circuit breakers whose state all worker processes share.

With Redis configured the breaker state lives there, so one process that
sees a provider fail opens the breaker for every process. Dev mode keeps the
state in memory. Only retryable provider errors count as failures: a declined payment
shows that the provider is up.
"""

from __future__ import annotations

import logging

import pybreaker
import redis

from hub.config import Settings
from hub.errors import ProviderError

logger = logging.getLogger(__name__)


def _is_not_outage(error: BaseException) -> bool:
    """Return True for errors the breaker must not count.

    Only retryable provider errors count. A decline or a database error does
    not show that the provider is down.
    """
    return not (isinstance(error, ProviderError) and error.retryable)


class BreakerLogger(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        # pybreaker also reports a re-opened breaker (open to open).
        if old_state is not None and old_state.name == new_state.name:
            return
        logger.warning(
            "circuit breaker for provider %s changed from %s to %s",
            cb.name,
            old_state.name if old_state else "none",
            new_state.name,
        )


class Breakers:
    """Creates one breaker per provider on first use."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self._redis = (
            redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
        )

    def for_provider(self, provider: str) -> pybreaker.CircuitBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = pybreaker.CircuitBreaker(
                fail_max=self._settings.breaker_fail_max,
                reset_timeout=self._settings.breaker_reset_seconds,
                exclude=[_is_not_outage],
                listeners=[BreakerLogger()],
                state_storage=self._storage(provider),
                name=provider,
                # Raise the provider's own error, which names the failure.
                throw_new_error_on_trip=False,
            )
            self._breakers[provider] = breaker
        return breaker

    def _storage(self, provider: str) -> pybreaker.CircuitBreakerStorage:
        if self._redis is None:
            return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        return pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED,
            self._redis,
            namespace=f"{self._settings.broker_namespace}:breaker:{provider}",
        )

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
