"""The Dramatiq broker: Redis in production, an in-process stub in dev mode.

The broker only wakes workers. Every message carries a job id whose row in
the database describes the work, so the relay rebuilds anything lost in
Redis from the jobs table.
"""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from hub.config import Settings, load_settings

QUEUE_NAME = "hub-jobs"

# A worker that stops sending heartbeats for this long is considered dead
# and Redis hands its unacknowledged messages to other workers.
HEARTBEAT_TIMEOUT_MS = 15_000

# A Redis that accepts connections but does not respond must not block a
# request or a worker thread for long. The relay covers a send that failed.
REDIS_TIMEOUT_SECONDS = 5.0


def build_broker(settings: Settings) -> dramatiq.Broker:
    """Create the broker the settings ask for, with async actor support."""
    broker: dramatiq.Broker
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        broker = RedisBroker(
            client=client,
            namespace=settings.broker_namespace,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        )
    else:
        broker = StubBroker()
    broker.add_middleware(AsyncIO())
    return broker


def install_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """Make the settings' broker the global one, once per process.

    Dramatiq binds actors to the global broker when their module is
    imported, so this runs before ``hub.jobs.actors`` is imported.
    """
    current = getattr(dramatiq.broker, "global_broker", None)
    if current is not None:
        return current
    broker = build_broker(settings or load_settings())
    dramatiq.set_broker(broker)
    return broker
