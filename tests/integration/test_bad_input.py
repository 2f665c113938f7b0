"""Invalid requests, unknown operations and callers without access."""

from __future__ import annotations

import uuid

import grpc
import pytest

from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    BILLING,
    CHECKOUT,
    OPS,
    SUPPORT,
    HubClients,
    SandboxControl,
    Stack,
    bad_request,
    counter_deltas,
    error_info,
    new_key,
    payment_request,
    wait_for_state,
)

pytestmark = pytest.mark.integration

COUNT_OPERATIONS = "SELECT count(*) FROM operations"


@pytest.mark.parametrize(
    ("fields", "violated_field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"country": "XX"}, "country"),
        ({"country": "de"}, "country"),
        ({"currency": "ABC"}, "currency"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.234", "currency": "EUR"}, "amount"),
        ({"amount": "1.5", "currency": "JPY", "country": "JP"}, "amount"),
        ({"amount": "1e3"}, "amount"),
    ],
    ids=[
        "missing key",
        "key of 256 characters",
        "unknown country",
        "lower-case country",
        "unknown currency",
        "zero amount",
        "negative amount",
        "amount not a number",
        "three decimals for EUR",
        "decimals for JPY",
        "exponent notation",
    ],
)
async def test_invalid_payment_rejected(
    stack: Stack,
    clients: HubClients,
    sandbox: SandboxControl,
    fields: dict[str, str],
    violated_field: str,
) -> None:
    operations_before = await stack.database.value(COUNT_OPERATIONS)
    calls_before = await sandbox.stats()
    request = payment_request(new_key())
    for name, value in fields.items():
        setattr(request, name, value)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[0].CreatePayment(
            request, metadata=CHECKOUT.metadata, timeout=10
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = bad_request(raised.value)
    assert details is not None
    fields_named = [violation.field for violation in details.field_violations]
    assert fields_named == [violated_field]
    assert await stack.database.value(COUNT_OPERATIONS) == operations_before
    assert counter_deltas(calls_before, await sandbox.stats())["create_calls"] == 0


async def test_unknown_operation_not_found(clients: HubClients) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[0].GetOperation(
            pb.GetOperationRequest(id=str(uuid.uuid4())),
            metadata=CHECKOUT.metadata,
            timeout=10,
        )

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_other_callers_operation_not_found(clients: HubClients) -> None:
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[1].GetOperation(
            pb.GetOperationRequest(id=created.id), metadata=BILLING.metadata, timeout=10
        )

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "operation_id",
    ["", "not-a-uuid", str(uuid.uuid4()).replace("-", "")],
    ids=["empty", "not a UUID", "UUID without hyphens"],
)
async def test_malformed_operation_id_rejected(
    clients: HubClients, operation_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[0].GetOperation(
            pb.GetOperationRequest(id=operation_id),
            metadata=CHECKOUT.metadata,
            timeout=10,
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = bad_request(raised.value)
    assert details is not None
    assert [violation.field for violation in details.field_violations] == ["id"]


async def test_evidence_readable_by_support(clients: HubClients) -> None:
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )

    evidence = await clients.admins[1].GetOperation(
        pb.GetOperationRequest(id=created.id), metadata=SUPPORT.metadata, timeout=10
    )

    assert evidence.operation.id == created.id
    assert evidence.operation.caller == CHECKOUT.name
    await wait_for_state(clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED)


async def test_evidence_denied_to_service_role(clients: HubClients) -> None:
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.admins[0].GetOperation(
            pb.GetOperationRequest(id=created.id),
            metadata=CHECKOUT.metadata,
            timeout=10,
        )

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_ops_role_cannot_create_payment(
    stack: Stack, clients: HubClients
) -> None:
    operations_before = await stack.database.value(COUNT_OPERATIONS)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[0].CreatePayment(
            payment_request(new_key()), metadata=OPS.metadata, timeout=10
        )

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await stack.database.value(COUNT_OPERATIONS) == operations_before


@pytest.mark.parametrize(
    ("metadata", "expected_code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (
            (("authorization", "Bearer not-a-configured-token"),),
            grpc.StatusCode.UNAUTHENTICATED,
        ),
        (SUPPORT.metadata, grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=["no token", "wrong token", "support role"],
)
async def test_create_payment_denied(
    stack: Stack,
    clients: HubClients,
    sandbox: SandboxControl,
    metadata: tuple[tuple[str, str], ...],
    expected_code: grpc.StatusCode,
) -> None:
    operations_before = await stack.database.value(COUNT_OPERATIONS)
    calls_before = await sandbox.stats()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await clients.hubs[0].CreatePayment(
            payment_request(new_key()), metadata=metadata, timeout=10
        )

    assert raised.value.code() == expected_code
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == expected_code.name
    assert await stack.database.value(COUNT_OPERATIONS) == operations_before
    assert counter_deltas(calls_before, await sandbox.stats())["create_calls"] == 0
