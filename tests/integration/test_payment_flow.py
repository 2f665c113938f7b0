"""A payment from the gRPC API through a worker, the sandbox and its webhook."""

from __future__ import annotations

import pytest

from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    CHECKOUT,
    HubClients,
    SandboxControl,
    counter_deltas,
    new_key,
    payment_request,
    wait_for_evidence,
    wait_for_state,
)

pytestmark = pytest.mark.integration


async def test_payment_succeeds_after_webhook(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()

    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    evidence = await wait_for_evidence(
        clients.admins[0],
        created.id,
        lambda found: (
            found.operation.state == pb.OPERATION_STATE_SUCCEEDED
            and len(found.webhook_events) == 1
            and len(found.webhook_events[0].handler_runs) == 1
            and all(attempt.outcome for attempt in found.attempts)
        ),
        "succeeded with its webhook handled and its attempt finished",
    )

    operation = evidence.operation
    assert created.state == pb.OPERATION_STATE_PENDING
    assert operation.provider_reference.startswith("payment_")
    assert operation.attempt_count == 1
    assert [attempt.outcome for attempt in evidence.attempts] == ["succeeded"]
    event = evidence.webhook_events[0]
    assert event.event_type == "PAYMENT_COMPLETED"
    assert [run.outcome for run in event.handler_runs] == ["applied"]
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["charges"] == 1
    assert deltas["webhooks_sent"] == 1


async def test_payment_readable_by_its_caller(clients: HubClients) -> None:
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key(), amount="7", currency="JPY", country="JP"),
        metadata=CHECKOUT.metadata,
        timeout=10,
    )
    await wait_for_state(clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED)

    read = await clients.hubs[1].GetOperation(
        pb.GetOperationRequest(id=created.id), metadata=CHECKOUT.metadata, timeout=10
    )

    assert read.state == pb.OPERATION_STATE_SUCCEEDED
    assert read.caller == CHECKOUT.name
    assert read.payment.amount == "7"
    assert read.payment.currency == "JPY"
