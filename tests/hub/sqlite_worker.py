"""A worker context on a SQLite file, shared by the job and handler tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from hub.config import load_settings
from hub.jobs.breakers import Breakers
from hub.jobs.outbox import Dispatcher
from hub.jobs.runner import WorkerContext
from hub.operations import Created, create_payment_operation
from hub.payments import validate_create_payment
from hub.persistence.database import create_engine, create_session_factory
from hub.persistence.migrate import upgrade
from hub.registry import Registry
from integrations.v1 import hub_pb2


@asynccontextmanager
async def sqlite_worker(
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    registry_class: type[Registry] = Registry,
    dispatcher: Dispatcher | None = None,
) -> AsyncIterator[tuple[WorkerContext, Created]]:
    """Yield a worker context and one pending payment with its queued job."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}"
    upgrade(url)
    settings = dataclasses.replace(load_settings(env or {}), database_url=url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    payment = validate_create_payment(
        hub_pb2.CreatePaymentRequest(
            idempotency_key="k1",
            country="DE",
            amount="10.00",
            currency="EUR",
            payment_method_type="de_visa_card",
        )
    )
    async with sessions.begin() as session:
        created = await create_payment_operation(
            session=session,
            caller="svc",
            payment=payment,
            provider="rapyd",
            max_attempts=settings.retry.max_attempts,
        )
    try:
        async with aiohttp.ClientSession() as http:
            yield (
                WorkerContext(
                    settings=settings,
                    engine=engine,
                    sessions=sessions,
                    registry=registry_class(settings),
                    http=http,
                    breakers=Breakers(settings),
                    dispatcher=dispatcher or Dispatcher(lambda job_id, delay: None),
                ),
                created,
            )
    finally:
        await engine.dispose()
