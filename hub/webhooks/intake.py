"""Storing verified provider webhooks with the job that processes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import InboundEvent
from hub.jobs import outbox
from hub.persistence.database import dialect_insert
from hub.persistence.models import WebhookEvent, utc_now

# Headers that could carry credentials of a proxy or client; they are not
# part of any provider's signature and are never stored.
UNSTORED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

logger = logging.getLogger(__name__)


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers to keep as evidence, with lower-case names.

    Credentials are dropped. So is a value that is not valid UTF-8 or holds a
    NUL, which PostgreSQL cannot store as JSON text; the signature headers
    are plain ASCII, so no header the verification used is lost.
    """
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in UNSTORED_HEADERS:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            logger.warning("header %s is not valid UTF-8; not stored", lowered)
            continue
        if "\x00" in value or "\x00" in lowered:
            logger.warning("header %s contains NUL; not stored", lowered)
            continue
        kept[lowered] = value
    return kept


@dataclass(frozen=True)
class Stored:
    """``job_id`` is None when the event was a duplicate."""

    webhook_event_id: str | None
    job_id: str | None


async def store_webhook(
    *,
    session: AsyncSession,
    provider: str,
    event: InboundEvent,
    raw_body: bytes,
    headers: Mapping[str, str],
    max_attempts: int,
) -> Stored:
    """Insert the event and its job, or nothing if the event id is known.

    The unique constraint on (provider, provider_event_id) decides between
    concurrent deliveries of one event.
    """
    event_id = outbox.new_id()
    kept_headers = storable_headers(headers)
    statement = (
        dialect_insert(session)(WebhookEvent)
        .values(
            id=event_id,
            provider=provider,
            provider_event_id=event.event_id,
            event_type=event.event_type,
            raw_body=raw_body,
            headers=kept_headers,
            received_at=utc_now(),
        )
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(WebhookEvent.id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    if inserted is None:
        return Stored(webhook_event_id=None, job_id=None)

    job = outbox.add_job(
        session=session,
        kind=outbox.JobKind.WEBHOOK,
        webhook_event_id=inserted,
        max_attempts=max_attempts,
    )
    return Stored(webhook_event_id=inserted, job_id=job.id)
