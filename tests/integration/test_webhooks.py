"""The webhook gateway: verification, deduplication and durable storage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from integrations.v1 import admin_pb2
from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    CHECKOUT,
    POSTGRES_PORT,
    HubClients,
    SandboxControl,
    Stack,
    TcpProxy,
    free_port,
    new_key,
    payment_completed_body,
    payment_event_body,
    payment_request,
    post_webhook,
    wait_for_evidence,
    wait_for_state,
    webhook_headers,
)

pytestmark = pytest.mark.integration

# The gateway's default HUB_WEBHOOK_MAX_BODY_BYTES.
MAX_BODY_BYTES = 1024 * 1024
# Three times the hub's 5 s database connect timeout, so a gateway that
# limits the time of its database calls responds well within it.
STALL_WAIT_SECONDS = 15.0

COUNT_EVENTS = "SELECT count(*) FROM webhook_events"
COUNT_EVENTS_WITH_ID = (
    "SELECT count(*) FROM webhook_events WHERE provider_event_id = %s"
)
COUNT_HANDLER_RUNS = (
    "SELECT count(*) FROM handler_runs r JOIN webhook_events e "
    "ON r.webhook_event_id = e.id WHERE e.provider_event_id = %s"
)


async def operation_awaiting_webhook(
    clients: HubClients, sandbox: SandboxControl
) -> admin_pb2.OperationEvidence:
    """Create a payment that the sandbox accepts but never reports by webhook."""
    await sandbox.set_faults(webhooks=False)
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    return await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_PROCESSING
    )


def rapyd_url(gateway_url: str) -> str:
    return f"{gateway_url}/webhooks/rapyd"


async def test_duplicate_webhook_has_one_effect(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    awaiting = await operation_awaiting_webhook(clients, sandbox)
    operation = awaiting.operation
    event_id = f"wh_{uuid.uuid4().hex}"
    body = payment_completed_body(operation.provider_reference, operation.id, event_id)
    headers = webhook_headers(stack, body)

    responses = await asyncio.gather(
        *(post_webhook(rapyd_url(url), body, headers) for url in stack.gateway_urls)
    )
    evidence = await wait_for_state(
        clients.admins[0], operation.id, pb.OPERATION_STATE_SUCCEEDED
    )

    assert [status for status, _, _ in responses] == [200] * len(responses)
    results = sorted(json.loads(text)["status"] for _, _, text in responses)
    assert results == ["accepted", "duplicate"]
    assert await stack.database.value(COUNT_EVENTS_WITH_ID, event_id) == 1
    assert await stack.database.value(COUNT_HANDLER_RUNS, event_id) == 1
    assert len(evidence.webhook_events) == 1
    runs = evidence.webhook_events[0].handler_runs
    assert [run.outcome for run in runs] == ["applied"]
    assert evidence.operation.provider_reference == operation.provider_reference


async def test_failed_event_fails_operation(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    awaiting = await operation_awaiting_webhook(clients, sandbox)
    operation = awaiting.operation
    body = payment_event_body(
        "PAYMENT_FAILED",
        {
            "id": operation.provider_reference,
            "merchant_reference_id": operation.id,
            "failure_code": "card_declined",
            "failure_message": "The card was declined.",
        },
    )

    status, _, _ = await post_webhook(
        rapyd_url(stack.gateway_urls[1]), body, webhook_headers(stack, body)
    )
    evidence = await wait_for_state(
        clients.admins[0], operation.id, pb.OPERATION_STATE_FAILED
    )

    assert status == 200
    assert evidence.operation.error.code == "PROVIDER_DECLINED"
    assert evidence.operation.error.provider_code == "card_declined"
    assert evidence.operation.error.message == "The card was declined."


async def test_event_found_by_provider_reference(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    awaiting = await operation_awaiting_webhook(clients, sandbox)
    operation = awaiting.operation
    body = payment_event_body(
        "PAYMENT_COMPLETED",
        {"id": operation.provider_reference, "merchant_reference_id": ""},
    )

    status, _, _ = await post_webhook(
        rapyd_url(stack.gateway_urls[0]), body, webhook_headers(stack, body)
    )
    evidence = await wait_for_state(
        clients.admins[0], operation.id, pb.OPERATION_STATE_SUCCEEDED
    )

    assert status == 200
    assert len(evidence.webhook_events) == 1


async def test_contradicting_event_keeps_final_state(
    stack: Stack, clients: HubClients
) -> None:
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    settled = await wait_for_evidence(
        clients.admins[0],
        created.id,
        lambda found: (
            found.operation.state == pb.OPERATION_STATE_SUCCEEDED
            and len(found.webhook_events) == 1
        ),
        "succeeded after the sandbox's webhook",
    )
    event_id = f"wh_{uuid.uuid4().hex}"
    body = payment_event_body(
        "PAYMENT_FAILED",
        {
            "id": settled.operation.provider_reference,
            "merchant_reference_id": created.id,
        },
        event_id,
    )

    status, _, _ = await post_webhook(
        rapyd_url(stack.gateway_urls[0]), body, webhook_headers(stack, body)
    )
    evidence = await wait_for_evidence(
        clients.admins[0],
        created.id,
        lambda found: (
            len(found.webhook_events) == 2
            and all(len(event.handler_runs) == 1 for event in found.webhook_events)
            and all(job.state == "done" for job in found.jobs)
        ),
        "the late event handled",
    )

    assert status == 200
    assert evidence.operation.state == pb.OPERATION_STATE_SUCCEEDED
    assert not evidence.operation.HasField("error")
    late = [e for e in evidence.webhook_events if e.provider_event_id == event_id]
    assert [run.outcome for run in late[0].handler_runs] == ["conflict"]


async def test_tampered_body_rejected(stack: Stack) -> None:
    before = await stack.database.value(COUNT_EVENTS)
    signed_body = payment_completed_body("payment_signed", str(uuid.uuid4()))
    sent_body = payment_completed_body("payment_tampered", str(uuid.uuid4()))

    status, _, text = await post_webhook(
        rapyd_url(stack.gateway_urls[0]),
        sent_body,
        webhook_headers(stack, signed_body),
    )

    assert status == 401
    assert json.loads(text)["error"]["code"] == "WEBHOOK_SIGNATURE_INVALID"
    assert await stack.database.value(COUNT_EVENTS) == before


async def test_missing_signature_rejected(stack: Stack) -> None:
    before = await stack.database.value(COUNT_EVENTS)
    body = payment_completed_body("payment_unsigned", str(uuid.uuid4()))
    headers = webhook_headers(stack, body)
    del headers["signature"]

    status, _, _ = await post_webhook(rapyd_url(stack.gateway_urls[0]), body, headers)

    assert status == 401
    assert await stack.database.value(COUNT_EVENTS) == before


async def test_stale_timestamp_rejected(stack: Stack) -> None:
    before = await stack.database.value(COUNT_EVENTS)
    body = payment_completed_body("payment_stale", str(uuid.uuid4()))
    # Signed correctly, but an hour old, which is past the default 300 s limit.
    headers = webhook_headers(stack, body, timestamp=int(time.time()) - 3600)

    status, _, _ = await post_webhook(rapyd_url(stack.gateway_urls[0]), body, headers)

    assert status == 401
    assert await stack.database.value(COUNT_EVENTS) == before


@contextlib.asynccontextmanager
async def proxied_gateway(stack: Stack) -> AsyncIterator[tuple[TcpProxy, str]]:
    """Start a gateway whose database connections pass through a TCP proxy.

    Yields the proxy and the gateway's webhook URL.
    """
    proxy = TcpProxy(target_port=POSTGRES_PORT)
    gateway = None
    try:
        proxy.start()
        port = free_port()
        database_url = (
            f"postgresql://postgres@127.0.0.1:{proxy.port}/{stack.database.name}"
        )
        gateway = await asyncio.to_thread(
            stack.start_gateway,
            f"gateway-proxied-{port}",
            port,
            database_url=database_url,
        )
        yield proxy, rapyd_url(f"http://127.0.0.1:{port}")
    finally:
        # Resumed first, so that no request of the gateway waits on the proxy.
        proxy.resume()
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
        proxy.close()


async def test_database_outage_answers_503(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    awaiting = await operation_awaiting_webhook(clients, sandbox)
    operation = awaiting.operation
    event_id = f"wh_{uuid.uuid4().hex}"
    body = payment_completed_body(operation.provider_reference, operation.id, event_id)

    async with proxied_gateway(stack) as (proxy, url):
        proxy.stop()
        outage_status, outage_headers, _ = await post_webhook(
            url, body, webhook_headers(stack, body)
        )
        stored_during_outage = await stack.database.value(
            COUNT_EVENTS_WITH_ID, event_id
        )
        proxy.start()
        status, _, _ = await post_webhook(url, body, webhook_headers(stack, body))
    evidence = await wait_for_state(
        clients.admins[0], operation.id, pb.OPERATION_STATE_SUCCEEDED
    )

    assert outage_status == 503
    assert "Retry-After" in outage_headers
    assert stored_during_outage == 0
    assert status == 200
    assert await stack.database.value(COUNT_EVENTS_WITH_ID, event_id) == 1
    assert [event.provider_event_id for event in evidence.webhook_events] == [event_id]


async def test_stalled_database_answers_503(stack: Stack) -> None:
    event_id = f"wh_{uuid.uuid4().hex}"
    body = payment_completed_body("payment_stalled", str(uuid.uuid4()), event_id)

    async with proxied_gateway(stack) as (proxy, url):
        proxy.pause()
        try:
            status, headers, _ = await post_webhook(
                url, body, webhook_headers(stack, body), wait_seconds=STALL_WAIT_SECONDS
            )
        except TimeoutError:
            # Status 0 means no response within STALL_WAIT_SECONDS.
            status, headers = 0, {}
        proxy.resume()
        retry_status, _, _ = await post_webhook(
            url, body, webhook_headers(stack, body), wait_seconds=STALL_WAIT_SECONDS
        )

    assert status == 503
    assert "Retry-After" in headers
    assert retry_status == 200


@pytest.mark.parametrize(
    ("method", "path", "expected_status"),
    [
        ("POST", "/webhooks/unknown-provider", 404),
        ("GET", "/webhooks/rapyd", 405),
    ],
    ids=["unknown provider", "GET method"],
)
async def test_gateway_rejects_wrong_route(
    stack: Stack, method: str, path: str, expected_status: int
) -> None:
    before = await stack.database.value(COUNT_EVENTS)
    body = payment_completed_body("payment_route", str(uuid.uuid4()))

    status, _, _ = await post_webhook(
        stack.gateway_urls[0] + path,
        body,
        webhook_headers(stack, body),
        method=method,
    )

    assert status == expected_status
    assert await stack.database.value(COUNT_EVENTS) == before


async def test_oversized_body_rejected(stack: Stack) -> None:
    before = await stack.database.value(COUNT_EVENTS)
    event = json.loads(payment_completed_body("payment_large", str(uuid.uuid4())))
    event["padding"] = "x" * MAX_BODY_BYTES
    body = json.dumps(event, separators=(",", ":")).encode()

    status, _, _ = await post_webhook(
        rapyd_url(stack.gateway_urls[0]), body, webhook_headers(stack, body)
    )

    assert status == 413
    assert await stack.database.value(COUNT_EVENTS) == before


async def test_body_at_size_limit_accepted(stack: Stack) -> None:
    event_id = f"wh_{uuid.uuid4().hex}"
    event = json.loads(payment_completed_body("payment_limit", "", event_id))
    event["padding"] = ""
    unpadded = len(json.dumps(event, separators=(",", ":")).encode())
    event["padding"] = "x" * (MAX_BODY_BYTES - unpadded)
    body = json.dumps(event, separators=(",", ":")).encode()

    status, _, _ = await post_webhook(
        rapyd_url(stack.gateway_urls[0]), body, webhook_headers(stack, body)
    )

    assert len(body) == MAX_BODY_BYTES
    assert status == 200
    assert await stack.database.value(COUNT_EVENTS_WITH_ID, event_id) == 1


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"type":"PAYMENT_COMPLETED","data":{}}'],
    ids=["not JSON", "JSON array", "no event id"],
)
async def test_unusable_body_rejected(stack: Stack, body: bytes) -> None:
    before = await stack.database.value(COUNT_EVENTS)

    status, _, text = await post_webhook(
        rapyd_url(stack.gateway_urls[0]), body, webhook_headers(stack, body)
    )

    assert status == 400
    assert json.loads(text)["error"]["code"] == "WEBHOOK_PAYLOAD_INVALID"
    assert await stack.database.value(COUNT_EVENTS) == before
