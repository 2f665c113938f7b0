"""Idempotency keys: one operation and one provider call per (caller, key)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    BILLING,
    CHECKOUT,
    HubClients,
    SandboxControl,
    Stack,
    counter_deltas,
    error_info,
    new_key,
    payment_request,
    wait_for_state,
)

pytestmark = pytest.mark.integration

CONCURRENT_REQUESTS = 20


async def test_repeat_returns_same_operation(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    request = payment_request(new_key())
    first = await clients.hubs[0].CreatePayment(
        request, metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(clients.admins[0], first.id, pb.OPERATION_STATE_SUCCEEDED)

    repeat = await clients.hubs[1].CreatePayment(
        request, metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(clients.admins[0], first.id, pb.OPERATION_STATE_SUCCEEDED)

    assert repeat.id == first.id
    assert repeat.state == pb.OPERATION_STATE_SUCCEEDED
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 1
    assert deltas["charges"] == 1


async def test_reused_key_with_other_amount_rejected(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    key = new_key()
    first = await clients.hubs[0].CreatePayment(
        payment_request(key, amount="12.50"), metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(clients.admins[0], first.id, pb.OPERATION_STATE_SUCCEEDED)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[1].CreatePayment(
            payment_request(key, amount="99.00"),
            metadata=CHECKOUT.metadata,
            timeout=10,
        )

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert info.metadata["operation_id"] == first.id
    evidence = await wait_for_state(
        clients.admins[0], first.id, pb.OPERATION_STATE_SUCCEEDED
    )
    assert evidence.operation.payment.amount == "12.50"
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 1
    assert deltas["charges"] == 1


async def test_concurrent_repeats_create_one_operation(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    key = new_key()
    request = payment_request(key)

    # Alternate between the hub processes so both race for the same key.
    responses = await asyncio.gather(
        *(
            clients.hubs[index % len(clients.hubs)].CreatePayment(
                request, metadata=CHECKOUT.metadata, timeout=20
            )
            for index in range(CONCURRENT_REQUESTS)
        )
    )
    operation_id = responses[0].id
    await wait_for_state(clients.admins[0], operation_id, pb.OPERATION_STATE_SUCCEEDED)

    assert {response.id for response in responses} == {operation_id}
    rows = await stack.database.value(
        "SELECT count(*) FROM operations WHERE caller = %s AND idempotency_key = %s",
        CHECKOUT.name,
        key,
    )
    assert rows == 1
    jobs = await stack.database.value(
        "SELECT count(*) FROM jobs WHERE operation_id = %s", operation_id
    )
    assert jobs == 1
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 1
    assert deltas["charges"] == 1


async def test_same_key_from_two_callers(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    key = new_key()

    checkout_operation = await clients.hubs[0].CreatePayment(
        payment_request(key), metadata=CHECKOUT.metadata, timeout=10
    )
    billing_operation = await clients.hubs[1].CreatePayment(
        payment_request(key, amount="30.00"), metadata=BILLING.metadata, timeout=10
    )
    for operation in (checkout_operation, billing_operation):
        await wait_for_state(
            clients.admins[0], operation.id, pb.OPERATION_STATE_SUCCEEDED
        )

    assert checkout_operation.id != billing_operation.id
    assert checkout_operation.caller == CHECKOUT.name
    assert billing_operation.caller == BILLING.name
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 2
    assert deltas["charges"] == 2
