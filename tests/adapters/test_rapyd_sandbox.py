from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import aiohttp
import pytest

from adapters.rapyd.config import RapydConfig
from adapters.rapyd.sandbox import SANDBOX_STATE, create_sandbox_app
from adapters.rapyd.signing import compact_json, signed_request_headers
from adapters.rapyd.webhooks import RapydWebhookVerifier
from hub.errors import WebhookSignatureError
from tests.adapters.rapyd_servers import (
    ACCESS_KEY,
    SECRET_KEY,
    Receiver,
    Sandbox,
    start_app,
)

PAYMENT = {
    "amount": "12.50",
    "currency": "EUR",
    "payment_method": {"type": "de_visa_card"},
    "merchant_reference_id": "op-1",
    "description": "Zürich café 東京",
    "metadata": {"customer_id": "cus-1"},
}


async def send(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    method: str,
    path: str,
    payload: Any = None,
    *,
    idempotency_key: str | None = None,
    secret_key: str = SECRET_KEY,
    access_key: str = ACCESS_KEY,
    timestamp: int | None = None,
) -> tuple[int, dict[str, Any], bytes]:
    body = b"" if payload is None else compact_json(payload)
    headers = signed_request_headers(
        method=method,
        url_path=path,
        access_key=access_key,
        secret_key=secret_key,
        body=body,
        idempotency_key=idempotency_key,
        timestamp=timestamp,
    )
    async with http.request(
        method, sandbox.url + path, data=body, headers=headers
    ) as response:
        raw = await response.read()
        return response.status, json.loads(raw), raw


async def stats(http: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, int]:
    async with http.get(sandbox.url + "/_sandbox/stats") as response:
        result: dict[str, int] = await response.json()
        return result


async def set_faults(
    http: aiohttp.ClientSession, sandbox: Sandbox, **faults: Any
) -> int:
    async with http.post(sandbox.url + "/_sandbox/faults", json=faults) as response:
        return response.status


def verifier_for(url: str) -> RapydWebhookVerifier:
    return RapydWebhookVerifier(
        RapydConfig(
            base_url="http://127.0.0.1",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            webhook_url=url,
        )
    )


async def test_create_returns_active_payment(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, envelope, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)

    data = envelope["data"]
    assert status == 200
    assert envelope["status"]["status"] == "SUCCESS"
    assert envelope["status"]["error_code"] == ""
    assert re.fullmatch(r"[0-9a-f-]{36}", envelope["status"]["operation_id"])
    assert re.fullmatch(r"payment_[0-9a-f]{32}", data["id"])
    assert data["status"] == "ACT"
    assert data["amount"] == "12.50"
    assert data["currency_code"] == "EUR"
    assert data["merchant_reference_id"] == "op-1"
    assert data["description"] == "Zürich café 東京"
    assert isinstance(data["created_at"], int)


async def test_create_accepts_integer_amount(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, envelope, _ = await send(
        http, sandbox, "post", "/v1/payments", {**PAYMENT, "amount": 12}
    )

    assert status == 200
    assert envelope["data"]["amount"] == 12


async def test_raw_digest_signature_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    body = compact_json(PAYMENT)
    salt, timestamp = "abcdefgh1234", str(int(time.time()))
    message = (
        "post/v1/payments" + salt + timestamp + ACCESS_KEY + SECRET_KEY
    ).encode() + body
    raw_digest = hmac.new(SECRET_KEY.encode(), message, hashlib.sha256).digest()
    headers = {
        "access_key": ACCESS_KEY,
        "salt": salt,
        "timestamp": timestamp,
        "signature": base64.b64encode(raw_digest).decode(),
        "Content-Type": "application/json",
    }

    async with http.post(
        sandbox.url + "/v1/payments", data=body, headers=headers
    ) as response:
        envelope = await response.json()

    assert response.status == 401
    assert envelope["status"]["error_code"] == "UNAUTHENTICATED_API_CALL"
    assert envelope["status"]["status"] == "ERROR"
    assert envelope["data"] is None
    assert (await stats(http, sandbox))["create_calls"] == 0


async def test_wrong_secret_key_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, envelope, _ = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, secret_key="wrong"
    )

    assert status == 401
    assert envelope["status"]["error_code"] == "UNAUTHENTICATED_API_CALL"


async def test_wrong_access_key_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, envelope, _ = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, access_key="other"
    )

    assert status == 401
    assert envelope["status"]["error_code"] == "UNAUTHENTICATED_API_CALL"


async def test_stale_timestamp_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    stale = int(time.time()) - 120

    status, envelope, _ = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, timestamp=stale
    )

    assert status == 401
    assert envelope["status"]["error_code"] == "UNAUTHENTICATED_API_CALL"


async def test_missing_headers_are_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    async with http.post(sandbox.url + "/v1/payments", json=PAYMENT) as response:
        envelope = await response.json()

    assert response.status == 400
    assert envelope["status"]["error_code"] == "MISSING_AUTHENTICATION_HEADERS"


async def test_body_changed_after_signing_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    body = compact_json(PAYMENT)
    headers = signed_request_headers(
        method="post",
        url_path="/v1/payments",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        body=body,
    )
    pretty = json.dumps(PAYMENT, indent=2).encode()

    async with http.post(
        sandbox.url + "/v1/payments", data=pretty, headers=headers
    ) as response:
        envelope = await response.json()

    assert response.status == 401
    assert envelope["status"]["error_code"] == "UNAUTHENTICATED_API_CALL"


async def test_get_signs_path_with_query(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    _, created, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    path = f"/v1/payments/{created['data']['id']}?expand=true"

    status, envelope, _ = await send(http, sandbox, "get", path)

    assert status == 200
    assert envelope["data"]["id"] == created["data"]["id"]


async def test_get_without_query_in_signature_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    headers = signed_request_headers(
        method="get",
        url_path="/v1/payments/payment_x",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        body=b"",
    )

    async with http.get(
        sandbox.url + "/v1/payments/payment_x?expand=true", headers=headers
    ) as response:
        assert response.status == 401


async def test_get_unknown_payment_is_not_found(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, envelope, _ = await send(http, sandbox, "get", "/v1/payments/payment_x")

    assert status == 404
    assert envelope["status"]["status"] == "ERROR"


@pytest.mark.parametrize(
    ("changes", "error_code"),
    [
        ({"amount": 0}, "ERROR_AMOUNT_MUST_BE_POSITIVE"),
        ({"amount": "-1.00"}, "ERROR_AMOUNT_MUST_BE_POSITIVE"),
        ({"amount": "ten"}, "ERROR_INVALID_AMOUNT"),
        ({"amount": True}, "ERROR_INVALID_AMOUNT"),
        ({"currency": "euro"}, "ERROR_INVALID_CURRENCY"),
        ({"payment_method": {}}, "ERROR_MISSING_PAYMENT_METHOD_TYPE"),
        ({"metadata": []}, "ERROR_INVALID_FIELD"),
    ],
)
async def test_invalid_payment_is_rejected(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    changes: dict[str, Any],
    error_code: str,
) -> None:
    status, envelope, _ = await send(
        http, sandbox, "post", "/v1/payments", {**PAYMENT, **changes}
    )

    assert status == 400
    assert envelope["status"]["error_code"] == error_code
    assert (await stats(http, sandbox))["charges"] == 0


async def test_idempotent_repeat_returns_first_response(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    first = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="key-1"
    )
    second = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="key-1"
    )

    counters = await stats(http, sandbox)
    assert second[2] == first[2]
    assert counters["charges"] == 1
    assert counters["create_calls"] == 2


async def test_idempotent_repeat_ignores_currency(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    first = await send(
        http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="key-1"
    )
    second = await send(
        http,
        sandbox,
        "post",
        "/v1/payments",
        {**PAYMENT, "currency": "USD"},
        idempotency_key="key-1",
    )

    assert second[2] == first[2]
    assert (await stats(http, sandbox))["charges"] == 1


async def test_idempotency_key_with_other_amount_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await send(http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="k")

    status, envelope, _ = await send(
        http,
        sandbox,
        "post",
        "/v1/payments",
        {**PAYMENT, "amount": "13.00"},
        idempotency_key="k",
    )

    assert status == 400
    assert envelope["status"]["error_code"] == "ERROR_IDEMPOTENCY_KEY_REUSED"
    assert (await stats(http, sandbox))["charges"] == 1


async def test_idempotent_amount_compares_by_value(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    first = await send(
        http,
        sandbox,
        "post",
        "/v1/payments",
        {**PAYMENT, "amount": 12},
        idempotency_key="k",
    )
    second = await send(
        http,
        sandbox,
        "post",
        "/v1/payments",
        {**PAYMENT, "amount": "12.00"},
        idempotency_key="k",
    )

    assert second[2] == first[2]


async def test_different_keys_create_two_charges(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await send(http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="a")
    await send(http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="b")

    assert (await stats(http, sandbox))["charges"] == 2


async def test_fail_next_creates_no_charge(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    assert await set_faults(http, sandbox, fail_next=1, fail_status=502) == 200

    failed = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    succeeded = await send(http, sandbox, "post", "/v1/payments", PAYMENT)

    counters = await stats(http, sandbox)
    assert failed[0] == 502
    assert succeeded[0] == 200
    assert counters["create_calls"] == 2
    assert counters["charges"] == 1


async def test_fail_status_429_sets_retry_after(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, fail_next=1, fail_status=429)
    body = compact_json(PAYMENT)
    headers = signed_request_headers(
        method="post",
        url_path="/v1/payments",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        body=body,
    )

    async with http.post(
        sandbox.url + "/v1/payments", data=body, headers=headers
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"


async def test_reset_clears_faults(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, fail_next=5)

    async with http.post(sandbox.url + "/_sandbox/reset") as response:
        faults = await response.json()

    status, _, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    assert faults["fail_next"] == 0
    assert status == 200


@pytest.mark.parametrize(
    "faults",
    [
        {"fail_next": -1},
        {"fail_next": "2"},
        {"fail_status": 200},
        {"delay_seconds": -0.5},
        {"webhooks": "no"},
        {"explode": True},
    ],
)
async def test_invalid_faults_are_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox, faults: dict[str, Any]
) -> None:
    assert await set_faults(http, sandbox, **faults) == 400


async def test_delayed_call_creates_charge_after_client_gives_up(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, delay_seconds=0.3)
    body = compact_json(PAYMENT)
    headers = signed_request_headers(
        method="post",
        url_path="/v1/payments",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        body=body,
    )

    with pytest.raises(TimeoutError):
        await http.post(
            sandbox.url + "/v1/payments",
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=0.05),
        )
    charges_at_timeout = (await stats(http, sandbox))["charges"]
    await asyncio.sleep(0.5)

    assert charges_at_timeout == 0
    assert (await stats(http, sandbox))["charges"] == 1


async def test_webhook_is_signed_for_verifier(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    _, created, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)

    webhook = await receiver.next()

    verifier_for(receiver.url).verify(webhook.headers, webhook.body, now=time.time())
    event = verifier_for(receiver.url).parse_event(webhook.body)
    assert event.provider_reference == created["data"]["id"]
    assert event.merchant_reference == "op-1"
    assert event.event_type == "PAYMENT_COMPLETED"
    assert re.fullmatch(r"wh_[0-9a-f]{32}", event.event_id)
    assert "access_key" not in {name.lower() for name in webhook.headers}


async def test_webhook_body_shape(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    await send(http, sandbox, "post", "/v1/payments", PAYMENT)

    webhook = await receiver.next()

    event = json.loads(webhook.body)
    assert webhook.body == compact_json(event)
    assert event["data"]["status"] == "CLO"
    assert event["status"] == "NEW"
    assert isinstance(event["created_at"], int)
    assert isinstance(event["extended_timestamp"], int)
    assert event["extended_timestamp"] // 1000 == event["created_at"]
    assert re.fullmatch(r"[0-9a-f-]{36}", event["trigger_operation_id"])


async def test_payment_is_closed_after_webhook(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    _, created, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    await receiver.next()

    _, envelope, _ = await send(
        http, sandbox, "get", f"/v1/payments/{created['data']['id']}"
    )

    assert envelope["data"]["status"] == "CLO"


async def test_idempotent_replay_sends_no_webhook(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    await send(http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="k")
    await receiver.next()

    await send(http, sandbox, "post", "/v1/payments", PAYMENT, idempotency_key="k")
    await asyncio.sleep(0.2)

    assert receiver.received.empty()
    assert (await stats(http, sandbox))["webhooks_sent"] == 1


async def test_webhook_is_retried_after_error(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    await send(http, sandbox, "post", "/v1/payments", PAYMENT)

    attempts = [await receiver.next() for _ in range(3)]
    await asyncio.sleep(0.05)

    counters = await stats(http, sandbox)
    assert len({json.loads(attempt.body)["id"] for attempt in attempts}) == 1
    assert counters["webhooks_sent"] == 1
    assert counters["webhooks_failed"] == 0


async def test_webhooks_off_sends_nothing(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    await set_faults(http, sandbox, webhooks=False)

    await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    await asyncio.sleep(0.2)

    assert receiver.received.empty()


async def test_resend_sends_new_event(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    _, created, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    first = json.loads((await receiver.next()).body)

    async with http.post(
        sandbox.url + "/_sandbox/webhooks/resend",
        json={"payment_id": created["data"]["id"]},
    ) as response:
        returned = await response.json()
    second = json.loads((await receiver.next()).body)

    assert returned == second
    assert second["id"] != first["id"]
    assert second["data"]["id"] == first["data"]["id"]


async def test_resend_same_event_id(
    http: aiohttp.ClientSession, sandbox: Sandbox, receiver: Receiver
) -> None:
    _, created, _ = await send(http, sandbox, "post", "/v1/payments", PAYMENT)
    first = await receiver.next()
    event_id = json.loads(first.body)["id"]

    async with http.post(
        sandbox.url + "/_sandbox/webhooks/resend",
        json={"payment_id": created["data"]["id"], "same_event_id": event_id},
    ) as response:
        assert response.status == 200
    second = await receiver.next()

    assert second.body == first.body
    verifier_for(receiver.url).verify(second.headers, second.body, now=time.time())


async def test_resend_unknown_payment_is_not_found(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    async with http.post(
        sandbox.url + "/_sandbox/webhooks/resend", json={"payment_id": "payment_x"}
    ) as response:
        assert response.status == 404


async def test_webhook_signed_with_configured_url(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    public_url = "https://hub.example.com/webhooks/rapyd"
    app = create_sandbox_app(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        webhook_target_url=receiver.url,
        webhook_url=public_url,
        webhook_delay_seconds=0.0,
    )
    runner, url = await start_app(app)
    try:
        await send(
            http, Sandbox(url, app[SANDBOX_STATE]), "post", "/v1/payments", PAYMENT
        )
        webhook = await receiver.next()
    finally:
        await runner.cleanup()

    verifier_for(public_url).verify(webhook.headers, webhook.body, now=time.time())
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verifier_for(receiver.url).verify(
            webhook.headers, webhook.body, now=time.time()
        )


async def test_hung_call_does_not_block_shutdown(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    app = create_sandbox_app(
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, webhook_target_url=None
    )
    runner, url = await start_app(app)
    sandbox = Sandbox(url, app[SANDBOX_STATE])
    await set_faults(http, sandbox, hang_next=1)
    call = asyncio.create_task(send(http, sandbox, "post", "/v1/payments", PAYMENT))
    await asyncio.sleep(0.1)

    started = time.monotonic()
    await runner.cleanup()
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)

    assert time.monotonic() - started < 5
    assert sandbox.state.stats.charges == 0
