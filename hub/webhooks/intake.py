"""Storing verified provider webhooks with the job that processes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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

    Credentials are dropped. So is a value that is not valid UTF-8 or contains
    a NUL, because PostgreSQL cannot store it as JSON text. Signature headers
    are plain ASCII, so no header the verification used is lost.
    """
    storable: dict[str, str] = {}
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
        storable[lowered] = value
    return storable


@dataclass(frozen=True)
class Stored:
    """``job_id`` is None when the event was a duplicate."""

    webhook_event_id: str | None
    job_id: str | None


@dataclass(frozen=True)
class Received:
    """A verified webhook waiting to be stored."""

    provider: str
    event: InboundEvent
    raw_body: bytes
    headers: Mapping[str, str]


async def store_webhooks(
    *, session: AsyncSession, received: Sequence[Received], max_attempts: int
) -> list[Stored]:
    """Insert events and their jobs in the session's transaction.

    Returns one result per item, in order. The unique constraint on
    (provider, provider_event_id) decides between concurrent deliveries of
    one event; within ``received``, only the first copy of an event counts.
    """
    now = utc_now()
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for item in received:
        key = (item.provider, item.event.event_id)
        if key not in rows:
            rows[key] = {
                "id": outbox.new_id(),
                "provider": item.provider,
                "provider_event_id": item.event.event_id,
                "event_type": item.event.event_type,
                "raw_body": item.raw_body,
                "headers": storable_headers(item.headers),
                "received_at": now,
            }
    inserted = (
        await session.execute(
            dialect_insert(session)(WebhookEvent)
            # Sorted, so concurrent batches of two gateways take their row
            # locks in the same order, which rules out a lock cycle between them.
            .values([rows[key] for key in sorted(rows)])
            .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
            .returning(WebhookEvent.id)
        )
    ).scalars()
    job_ids = {
        event_id: outbox.add_job(
            session=session,
            kind=outbox.JobKind.WEBHOOK,
            webhook_event_id=event_id,
            max_attempts=max_attempts,
        ).id
        for event_id in inserted
    }

    results: list[Stored] = []
    for item in received:
        row = rows.pop((item.provider, item.event.event_id), None)
        event_id = row["id"] if row else None
        if isinstance(event_id, str) and event_id in job_ids:
            results.append(Stored(webhook_event_id=event_id, job_id=job_ids[event_id]))
        else:
            results.append(Stored(webhook_event_id=None, job_id=None))
    return results


async def store_webhook(
    *,
    session: AsyncSession,
    provider: str,
    event: InboundEvent,
    raw_body: bytes,
    headers: Mapping[str, str],
    max_attempts: int,
) -> Stored:
    """Insert one event and its job, or nothing if the event id is known."""
    received = Received(provider, event, raw_body, headers)
    (stored,) = await store_webhooks(
        session=session, received=[received], max_attempts=max_attempts
    )
    return stored
