"""Webhook handlers against a SQLite file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from hub.jobs.runner import WorkerContext, execute_job
from hub.operations import OperationState, change_state
from hub.persistence.models import HandlerRun, Job, Operation, WebhookEvent
from hub.webhooks.intake import store_webhook
from tests.hub.sqlite_worker import sqlite_worker


@dataclasses.dataclass
class Harness:
    context: WorkerContext
    operation_id: str

    async def deliver(self, event_type: str, event_id: str, **data: str) -> str:
        """Store a webhook as the gateway would, run its job, return the job id."""
        body = json.dumps(
            {"id": event_id, "type": event_type, "data": data}, separators=(",", ":")
        ).encode()
        verifier = self.context.registry.webhook_verifier("rapyd")
        assert verifier is not None
        async with self.context.sessions.begin() as session:
            stored = await store_webhook(
                session=session,
                provider="rapyd",
                event=verifier.parse_event(body),
                raw_body=body,
                headers={"salt": "s", "Authorization": "Bearer x"},
                max_attempts=3,
            )
        assert stored.job_id is not None
        await execute_job(self.context, stored.job_id)
        return stored.job_id

    async def operation(self) -> Operation:
        async with self.context.sessions() as session:
            return await session.get_one(Operation, self.operation_id)

    async def runs(self) -> list[HandlerRun]:
        async with self.context.sessions() as session:
            return list((await session.execute(select(HandlerRun))).scalars())


@pytest_asyncio.fixture
async def harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("HUB_DEV_RAPYD_SECRET_KEY", "handler-test-secret")
    async with sqlite_worker(tmp_path) as (context, created):
        yield Harness(context, created.operation.id)


async def test_completed_event_settles_operation(harness: Harness) -> None:
    await harness.deliver(
        "PAYMENT_COMPLETED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    operation = await harness.operation()
    assert operation.state == OperationState.SUCCEEDED
    assert operation.provider_reference == "payment_9"
    assert [run.outcome for run in await harness.runs()] == ["applied"]


async def test_redelivered_job_applies_nothing_twice(harness: Harness) -> None:
    job_id = await harness.deliver(
        "PAYMENT_COMPLETED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )
    async with harness.context.sessions.begin() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(state="queued")
        )

    await execute_job(harness.context, job_id)

    assert len(await harness.runs()) == 1


async def test_failure_after_success_changes_nothing(harness: Harness) -> None:
    await harness.deliver(
        "PAYMENT_COMPLETED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    await harness.deliver(
        "PAYMENT_FAILED",
        "wh_2",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    assert (await harness.operation()).state == OperationState.SUCCEEDED
    assert [run.outcome for run in await harness.runs()] == ["applied", "conflict"]


async def test_event_found_by_provider_reference(harness: Harness) -> None:
    async with harness.context.sessions.begin() as session:
        await change_state(
            session=session,
            operation_id=harness.operation_id,
            to_state=OperationState.PROCESSING,
            values={"provider_reference": "payment_9"},
        )

    await harness.deliver("PAYMENT_FAILED", "wh_1", id="payment_9")

    operation = await harness.operation()
    assert operation.state == OperationState.FAILED
    assert operation.error_code == "PROVIDER_DECLINED"


async def test_event_for_unknown_operation_is_ignored(harness: Harness) -> None:
    await harness.deliver("PAYMENT_COMPLETED", "wh_1", id="payment_unknown")

    assert (await harness.operation()).state == OperationState.PENDING
    assert [run.outcome for run in await harness.runs()] == ["ignored"]


async def test_credentials_headers_are_not_stored(harness: Harness) -> None:
    await harness.deliver("PAYMENT_COMPLETED", "wh_1", id="payment_unknown")

    async with harness.context.sessions() as session:
        stored = (await session.execute(select(WebhookEvent))).scalar_one()
    assert "authorization" not in stored.headers
    assert stored.headers["salt"] == "s"


async def test_completed_event_settles_dead_letter(harness: Harness) -> None:
    async with harness.context.sessions.begin() as session:
        await change_state(
            session=session,
            operation_id=harness.operation_id,
            to_state=OperationState.DEAD_LETTERED,
            values={"error_code": "PROVIDER_TIMEOUT", "error_message": "timed out"},
        )

    await harness.deliver(
        "PAYMENT_COMPLETED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    operation = await harness.operation()
    assert operation.state == OperationState.SUCCEEDED
    assert operation.provider_reference == "payment_9"
    assert operation.error_code is None


async def test_success_after_failure_is_a_conflict(harness: Harness) -> None:
    await harness.deliver(
        "PAYMENT_FAILED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    await harness.deliver(
        "PAYMENT_COMPLETED",
        "wh_2",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
    )

    assert (await harness.operation()).state == OperationState.FAILED
    assert [run.outcome for run in await harness.runs()] == ["applied", "conflict"]


async def test_long_failure_code_is_truncated(harness: Harness) -> None:
    await harness.deliver(
        "PAYMENT_FAILED",
        "wh_1",
        id="payment_9",
        merchant_reference_id=harness.operation_id,
        failure_code="E" * 200,
    )

    operation = await harness.operation()
    assert operation.state == OperationState.FAILED
    assert operation.provider_error_code == "E" * 128
