"""The group-commit writer against a SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from adapters.base import InboundEvent
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import upgrade
from hub.persistence.models import WebhookEvent
from hub.webhooks.intake import Received
from hub.webhooks.writer import IntakeWriter


def received(event_id: str) -> Received:
    event = InboundEvent(
        event_id=event_id,
        event_type="PAYMENT_COMPLETED",
        provider_reference=None,
        merchant_reference=None,
        outcome=None,
    )
    return Received("rapyd", event, b"{}", {"salt": "s"})


@pytest_asyncio.fixture
async def writer(tmp_path: Path) -> AsyncIterator[IntakeWriter]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    intake = IntakeWriter(create_session_factory(engine), max_attempts=3)
    task = asyncio.create_task(intake.run())
    yield intake
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.dispose()


async def stored_count(intake: IntakeWriter) -> int:
    async with intake._sessions() as session:
        query = select(func.count()).select_from(WebhookEvent)
        return (await session.execute(query)).scalar_one()


async def test_batch_stores_each_event_once(writer: IntakeWriter) -> None:
    names = [f"wh_{i}" for i in range(30)] + ["wh_0"] * 5

    results = await asyncio.gather(*(writer.store(received(n)) for n in names))

    assert sum(result.job_id is not None for result in results) == 30
    assert await stored_count(writer) == 30


async def test_bad_event_does_not_fail_its_batch(writer: IntakeWriter) -> None:
    # A lone surrogate cannot be encoded for the database.
    names = [f"wh_{i}" for i in range(10)] + ["wh_\udc00"]

    results = await asyncio.gather(
        *(writer.store(received(n)) for n in names), return_exceptions=True
    )

    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert await stored_count(writer) == 10


async def test_writer_survives_failed_batch(writer: IntakeWriter) -> None:
    with pytest.raises(UnicodeEncodeError):
        await writer.store(received("wh_\udc00"))

    result = await writer.store(received("wh_after"))

    assert result.job_id is not None
