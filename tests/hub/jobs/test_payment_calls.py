"""The payment job against a SQLite file and a scripted adapter."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from adapters.base import PaymentRequest, PaymentResult, ProviderOutcome
from hub.errors import ProviderError, ProviderRejectedError, ProviderTimeoutError
from hub.jobs.outbox import Dispatcher
from hub.jobs.runner import WorkerContext, claim_job, execute_job
from hub.operations import OperationState, change_state
from hub.persistence.models import Attempt, Job, Operation
from hub.registry import Registry
from tests.hub.sqlite_worker import sqlite_worker


class ScriptedAdapter:
    provider = "rapyd"

    def __init__(self, script: list[PaymentResult | ProviderError]):
        self.script = script
        self.requests: list[PaymentRequest] = []

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, ProviderError):
            raise step
        return step


class ScriptedRegistry(Registry):
    adapter: ScriptedAdapter

    def payment_adapter(self, provider: str, session: object) -> ScriptedAdapter:
        return self.adapter


@dataclasses.dataclass
class Harness:
    context: WorkerContext
    adapter: ScriptedAdapter
    sent: list[tuple[str, float]]
    operation_id: str
    job_id: str

    async def operation(self) -> Operation:
        async with self.context.sessions() as session:
            return await session.get_one(Operation, self.operation_id)

    async def job(self) -> Job:
        async with self.context.sessions() as session:
            return await session.get_one(Job, self.job_id)

    async def attempts(self) -> list[Attempt]:
        async with self.context.sessions() as session:
            rows = await session.execute(select(Attempt).order_by(Attempt.number))
            return list(rows.scalars())


ACCEPTED = PaymentResult(
    outcome=ProviderOutcome.PROCESSING,
    provider_reference="payment_1",
    provider_status="ACT",
    http_status=200,
)


@pytest_asyncio.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    sent: list[tuple[str, float]] = []
    dispatcher = Dispatcher(lambda job_id, delay: sent.append((job_id, delay)))
    async with sqlite_worker(
        tmp_path,
        env={"HUB_JOB_MAX_ATTEMPTS": "2"},
        registry_class=ScriptedRegistry,
        dispatcher=dispatcher,
    ) as (context, created):
        registry = context.registry
        assert isinstance(registry, ScriptedRegistry)
        assert created.job is not None
        registry.adapter = ScriptedAdapter([])
        yield Harness(
            context, registry.adapter, sent, created.operation.id, created.job.id
        )


async def test_accepted_payment_waits_for_webhook(harness: Harness) -> None:
    harness.adapter.script = [ACCEPTED]

    await execute_job(harness.context, harness.job_id)

    operation = await harness.operation()
    assert operation.state == OperationState.PROCESSING
    assert operation.provider_reference == "payment_1"
    assert (await harness.job()).state == "done"
    assert [a.outcome for a in await harness.attempts()] == ["succeeded"]


async def test_provider_key_is_derived_from_operation(harness: Harness) -> None:
    harness.adapter.script = [ACCEPTED]

    await execute_job(harness.context, harness.job_id)

    request = harness.adapter.requests[0]
    assert request.idempotency_key == f"hub-{harness.operation_id}"


async def test_timeout_schedules_retry(harness: Harness) -> None:
    harness.adapter.script = [ProviderTimeoutError("slow", provider="rapyd")]

    await execute_job(harness.context, harness.job_id)

    assert (await harness.job()).state == "retry_scheduled"
    assert (await harness.operation()).state == OperationState.PENDING
    assert [job_id for job_id, _ in harness.sent] == [harness.job_id]
    assert harness.sent[0][1] > 0


async def test_exhausted_retries_dead_letter_operation(harness: Harness) -> None:
    harness.adapter.script = [
        ProviderTimeoutError("slow", provider="rapyd"),
        ProviderTimeoutError("slow", provider="rapyd"),
    ]
    await execute_job(harness.context, harness.job_id)
    async with harness.context.sessions.begin() as session:
        job = await session.get_one(Job, harness.job_id)
        job.run_after = job.updated_at.replace(year=2000)

    await execute_job(harness.context, harness.job_id)

    operation = await harness.operation()
    assert operation.state == OperationState.DEAD_LETTERED
    assert operation.error_code == "PROVIDER_TIMEOUT"
    assert (await harness.job()).state == "dead"
    assert len(harness.sent) == 1


async def test_rejection_fails_operation_without_retry(harness: Harness) -> None:
    harness.adapter.script = [
        ProviderRejectedError(
            "amount must be positive",
            provider="rapyd",
            http_status=400,
            provider_code="ERROR_AMOUNT_MUST_BE_POSITIVE",
        )
    ]

    await execute_job(harness.context, harness.job_id)

    operation = await harness.operation()
    assert operation.state == OperationState.FAILED
    assert operation.provider_error_code == "ERROR_AMOUNT_MUST_BE_POSITIVE"
    assert (await harness.job()).state == "done"
    assert harness.sent == []


async def test_settled_operation_is_not_sent_again(harness: Harness) -> None:
    async with harness.context.sessions.begin() as session:
        await change_state(
            session=session,
            operation_id=harness.operation_id,
            to_state=OperationState.SUCCEEDED,
        )

    await execute_job(harness.context, harness.job_id)

    assert harness.adapter.requests == []
    assert (await harness.job()).state == "done"


async def test_job_is_claimed_once(harness: Harness) -> None:
    first = await claim_job(harness.context, harness.job_id)

    second = await claim_job(harness.context, harness.job_id)

    assert first is not None
    assert second is None


async def test_late_answer_does_not_undo_webhook(harness: Harness) -> None:
    sessions = harness.context.sessions

    class WebhookWinsAdapter(ScriptedAdapter):
        async def create_payment(self, request: PaymentRequest) -> PaymentResult:
            # The provider's webhook settles the operation while the call
            # is still in flight.
            async with sessions.begin() as session:
                await change_state(
                    session=session,
                    operation_id=request.operation_id,
                    to_state=OperationState.SUCCEEDED,
                )
            return ACCEPTED

    registry = harness.context.registry
    assert isinstance(registry, ScriptedRegistry)
    registry.adapter = WebhookWinsAdapter([])

    await execute_job(harness.context, harness.job_id)

    assert (await harness.operation()).state == OperationState.SUCCEEDED
    assert (await harness.job()).state == "done"


async def test_open_breaker_postpones_without_attempt(harness: Harness) -> None:
    breaker = harness.context.breakers.for_provider("rapyd")
    breaker.open()

    await execute_job(harness.context, harness.job_id)

    job = await harness.job()
    assert harness.adapter.requests == []
    assert job.state == "retry_scheduled"
    assert job.attempts == 0
    assert await harness.attempts() == []
    assert harness.sent[0][1] >= harness.context.settings.breaker_reset_seconds


async def test_abandoned_attempt_is_closed_on_retry(harness: Harness) -> None:
    harness.adapter.script = [ACCEPTED]
    async with harness.context.sessions.begin() as session:
        session.add(
            Attempt(operation_id=harness.operation_id, job_id=harness.job_id, number=1)
        )
        operation = await session.get_one(Operation, harness.operation_id)
        operation.attempt_count = 1

    await execute_job(harness.context, harness.job_id)

    outcomes = [a.outcome for a in await harness.attempts()]
    assert outcomes == ["abandoned", "succeeded"]


async def test_unexpected_adapter_error_closes_attempt(harness: Harness) -> None:
    class BrokenAdapter(ScriptedAdapter):
        async def create_payment(self, request: PaymentRequest) -> PaymentResult:
            raise RuntimeError("adapter bug")

    registry = harness.context.registry
    assert isinstance(registry, ScriptedRegistry)
    registry.adapter = BrokenAdapter([])

    await execute_job(harness.context, harness.job_id)

    attempts = await harness.attempts()
    assert [a.outcome for a in attempts] == ["error"]
    assert attempts[0].error_message == "RuntimeError: adapter bug"
    assert (await harness.job()).state == "retry_scheduled"


async def test_lost_lease_discards_results(harness: Harness) -> None:
    sessions = harness.context.sessions

    class TakenOverAdapter(ScriptedAdapter):
        async def create_payment(self, request: PaymentRequest) -> PaymentResult:
            # Another worker claims the job while this call is in flight.
            async with sessions.begin() as session:
                job = await session.get_one(Job, harness.job_id)
                assert job.lease_until is not None
                job.lease_until = job.lease_until.replace(year=2999)
            return ACCEPTED

    registry = harness.context.registry
    assert isinstance(registry, ScriptedRegistry)
    registry.adapter = TakenOverAdapter([])

    await execute_job(harness.context, harness.job_id)

    assert (await harness.operation()).state == OperationState.PENDING
    assert (await harness.job()).state == "running"
