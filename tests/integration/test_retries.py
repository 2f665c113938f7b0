"""Provider failures: retries, permanent rejections and dead letters."""

from __future__ import annotations

import pytest

from integrations.v1 import operations_pb2 as pb
from tests.integration.stack import (
    CHECKOUT,
    MAX_JOB_ATTEMPTS,
    HubClients,
    SandboxControl,
    Stack,
    counter_deltas,
    eventually,
    new_key,
    payment_completed_body,
    payment_request,
    post_webhook,
    wait_for_state,
    webhook_headers,
)

pytestmark = pytest.mark.integration

# What the sandbox logs when an idempotency key returns a stored response.
SANDBOX_REPLAY_LINE = "sandbox replays the response for an idempotency key"


async def test_transient_failures_retried(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    await sandbox.set_faults(fail_next=2, fail_status=503)

    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED
    )

    outcomes = [attempt.outcome for attempt in evidence.attempts]
    assert outcomes == ["retryable_error", "retryable_error", "succeeded"]
    assert [attempt.http_status for attempt in evidence.attempts] == [503, 503, 200]
    assert evidence.operation.attempt_count == 3
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 3
    assert deltas["charges"] == 1


async def test_timeout_retried_with_one_charge(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    sandbox_log = stack.process("sandbox")
    replays_before = sandbox_log.log_text().count(SANDBOX_REPLAY_LINE)
    # The sandbox delays the first call past the hub's 2 s client timeout, so
    # that call reaches the payment store only after the retry created it.
    await sandbox.set_faults(hang_next=1, hang_seconds=3)

    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED
    )

    outcomes = [attempt.outcome for attempt in evidence.attempts]
    assert outcomes == ["retryable_error", "succeeded"]
    assert evidence.attempts[0].http_status == 0

    async def hung_call_replayed() -> bool:
        replays = sandbox_log.log_text().count(SANDBOX_REPLAY_LINE)
        return replays > replays_before

    await eventually(hung_call_replayed, "the hung call answered by a replay")
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 2
    assert deltas["charges"] == 1


async def test_rejection_fails_without_retry(
    clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    await sandbox.set_faults(fail_next=1, fail_status=400)

    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_FAILED
    )

    error = evidence.operation.error
    assert error.code == "PROVIDER_REJECTED"
    assert error.provider_code == "ERROR_SANDBOX_INJECTED_FAULT"
    assert [attempt.outcome for attempt in evidence.attempts] == ["permanent_error"]
    assert [(job.state, job.attempts) for job in evidence.jobs] == [("done", 1)]
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == 1
    assert deltas["charges"] == 0


async def test_exhausted_retries_dead_letter(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    before = await sandbox.stats()
    await sandbox.set_faults(fail_next=MAX_JOB_ATTEMPTS, fail_status=503)

    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_DEAD_LETTERED
    )

    outcomes = [attempt.outcome for attempt in evidence.attempts]
    assert outcomes == ["retryable_error"] * MAX_JOB_ATTEMPTS
    assert [(job.state, job.attempts) for job in evidence.jobs] == [
        ("dead", MAX_JOB_ATTEMPTS)
    ]
    assert evidence.operation.error.code == "PROVIDER_UNAVAILABLE"
    deltas = counter_deltas(before, await sandbox.stats())
    assert deltas["create_calls"] == MAX_JOB_ATTEMPTS
    assert deltas["charges"] == 0

    async def alert_lines() -> list[str]:
        return [
            line
            for line in stack.worker_logs().splitlines()
            if "[ERROR]" in line and "dead-lettered" in line and created.id in line
        ]

    lines = await eventually(alert_lines, "a worker ERROR line saying dead-lettered")
    assert len(lines) == 1


async def test_dead_letter_settled_by_webhook(
    stack: Stack, clients: HubClients, sandbox: SandboxControl
) -> None:
    await sandbox.set_faults(fail_next=MAX_JOB_ATTEMPTS, fail_status=503)
    created = await clients.hubs[0].CreatePayment(
        payment_request(new_key()), metadata=CHECKOUT.metadata, timeout=10
    )
    await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_DEAD_LETTERED
    )
    # The provider reports a payment that the hub never saw succeed, because
    # every call it made failed.
    body = payment_completed_body("payment_late_success", created.id)

    status, _, _ = await post_webhook(
        f"{stack.gateway_urls[0]}/webhooks/rapyd", body, webhook_headers(stack, body)
    )
    evidence = await wait_for_state(
        clients.admins[0], created.id, pb.OPERATION_STATE_SUCCEEDED
    )

    assert status == 200
    assert evidence.operation.provider_reference == "payment_late_success"
    assert not evidence.operation.HasField("error")
    runs = [run.outcome for run in evidence.webhook_events[0].handler_runs]
    assert runs == ["applied"]
