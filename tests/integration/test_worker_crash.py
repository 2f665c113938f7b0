"""A worker killed during a provider call: the relay hands its job to another."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    CHECKOUT,
    HubClients,
    SandboxControl,
    Stack,
    counter_deltas,
    eventually,
    new_key,
    payment_request,
    wait_for_evidence,
    wait_for_state,
)

pytestmark = pytest.mark.integration

# Below HUB_RAPYD_TIMEOUT_SECONDS (2 s), so the call is in flight, not timed out.
PROVIDER_DELAY_SECONDS = 1.5


@pytest.fixture
def workers_restored(stack: Stack) -> Iterator[None]:
    """Start workers again after the test, even when it failed midway."""
    yield
    stack.ensure_workers()


@pytest.mark.usefixtures("workers_restored")
async def test_killed_worker_job_completes_once(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    # Webhooks stay off until the end, so the retried job, not a webhook,
    # records the payment's outcome.
    await sandbox.set_faults(delay_seconds=PROVIDER_DELAY_SECONDS, webhooks=False)
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )

    async def call_in_flight() -> bool:
        unfinished = await stack.database.value(
            "SELECT count(*) FROM attempts "
            "WHERE operation_id = %s AND finished_at IS NULL",
            created.id,
        )
        received = counter_deltas(before, await sandbox.stats())["create_calls"]
        return bool(unfinished == 1 and received == 1)

    await eventually(
        call_in_flight,
        "an unfinished attempt row and the call received by the sandbox",
        interval=0.02,
    )
    stack.kill_workers()
    await sandbox.set_faults(delay_seconds=0)
    await asyncio.to_thread(stack.start_workers)

    processing = await wait_for_evidence(
        clients.admins[0],
        created.id,
        lambda found: (
            found.operation.state == pb.OPERATION_STATE_PROCESSING
            and len(found.attempts) == 2
        ),
        "processing after a second attempt",
    )
    await sandbox.resend_webhook(processing.operation.provider_reference)
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED
    )

    first, second = evidence.attempts
    assert first.outcome == "abandoned"
    assert first.http_status == 0
    assert second.outcome == "succeeded"
    assert second.http_status == 200
    assert evidence.operation.attempt_count == 2
    assert [job.state for job in evidence.jobs if job.kind == "operation"] == ["done"]
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["charges"] == 1
    assert deltas["create_calls"] == 2
