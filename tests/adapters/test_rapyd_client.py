from __future__ import annotations

import json
import logging
import socket
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from adapters.base import PaymentRequest, ProviderOutcome
from adapters.rapyd.client import RapydAdapter, rapyd_amount
from adapters.rapyd.config import RapydConfig
from adapters.rapyd.signing import request_signature
from hub.errors import (
    ConfigurationError,
    ProviderAuthError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from tests.adapters.rapyd_servers import ACCESS_KEY, SECRET_KEY, Sandbox, StubRapyd

REQUEST = PaymentRequest(
    operation_id="op-1",
    idempotency_key="idem-1",
    amount=Decimal("12.50"),
    currency="EUR",
    country="DE",
    payment_method_type="de_visa_card",
    description="Zürich café 東京",
    customer_id="cus-7",
    metadata={"order": "A-1"},
)


def adapter_for(
    http: aiohttp.ClientSession,
    base_url: str,
    *,
    secret_key: str = SECRET_KEY,
    timeout_seconds: float = 5.0,
) -> RapydAdapter:
    config = RapydConfig(
        base_url=base_url,
        access_key=ACCESS_KEY,
        secret_key=secret_key,
        webhook_url="https://hub.example.com/webhooks/rapyd",
        timeout_seconds=timeout_seconds,
    )
    return RapydAdapter(config, http)


def envelope(data: Any, **status: str) -> bytes:
    block = {
        "error_code": "",
        "status": "SUCCESS",
        "message": "",
        "response_code": "",
        "operation_id": "op-uuid-1",
    }
    block.update(status)
    return json.dumps({"status": block, "data": data}).encode()


async def stats(http: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, int]:
    async with http.get(sandbox.url + "/_sandbox/stats") as response:
        result: dict[str, int] = await response.json()
        return result


async def set_faults(
    http: aiohttp.ClientSession, sandbox: Sandbox, **faults: Any
) -> None:
    async with http.post(sandbox.url + "/_sandbox/faults", json=faults) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("12.50"), "12.50"),
        (Decimal("12.00"), 12),
        (Decimal("7"), 7),
        (Decimal("0.01"), "0.01"),
        (Decimal("1E+2"), 100),
    ],
)
def test_rapyd_amount(amount: Decimal, expected: int | str) -> None:
    assert rapyd_amount(amount) == expected


def test_rapyd_amount_rejects_nan() -> None:
    with pytest.raises(ValueError):
        rapyd_amount(Decimal("NaN"))


def test_config_repr_hides_secret() -> None:
    config = RapydConfig(
        base_url="https://sandboxapi.rapyd.net",
        access_key="access",
        secret_key="very-secret-value",
        webhook_url="https://hub.example.com/webhooks/rapyd",
    )

    assert "very-secret-value" not in repr(config)


def test_config_rejects_base_url_with_path() -> None:
    with pytest.raises(ConfigurationError):
        RapydConfig(
            base_url="https://sandboxapi.rapyd.net/v1",
            access_key="access",
            secret_key="secret",
            webhook_url="https://hub.example.com/webhooks/rapyd",
        )


async def test_sent_body_is_signed_bytes(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(200, envelope({"id": "payment_1", "status": "ACT"}))

    await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    sent = stub_rapyd.requests[0]
    expected = request_signature(
        method=sent.method,
        url_path=sent.raw_path,
        salt=sent.headers["salt"],
        timestamp=sent.headers["timestamp"],
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        body=sent.body,
    )
    assert sent.method == "POST"
    assert sent.raw_path == "/v1/payments"
    assert sent.headers["signature"] == expected
    assert sent.headers["access_key"] == ACCESS_KEY
    assert sent.headers["idempotency"] == "idem-1"
    assert sent.headers["Content-Type"] == "application/json"


async def test_sent_body_fields(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(200, envelope({"id": "payment_1", "status": "ACT"}))

    await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    raw = stub_rapyd.requests[0].body
    body = json.loads(raw)
    assert "Zürich café 東京".encode() in raw
    assert b" " not in raw.replace("Zürich café 東京".encode(), b"")
    assert body["amount"] == "12.50"
    assert body["currency"] == "EUR"
    assert body["payment_method"] == {"type": "de_visa_card"}
    assert body["merchant_reference_id"] == "op-1"
    assert body["metadata"] == {"order": "A-1", "hub_customer_id": "cus-7"}
    assert "country" not in body


async def test_whole_amount_sent_as_int(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(200, envelope({"id": "payment_1", "status": "ACT"}))
    request = PaymentRequest(
        operation_id="op-2",
        idempotency_key="idem-2",
        amount=Decimal("20.00"),
        currency="EUR",
        country="DE",
        payment_method_type="de_visa_card",
    )

    await adapter_for(http, stub_rapyd.url).create_payment(request)

    assert b'"amount":20,' in stub_rapyd.requests[0].body


async def test_create_against_sandbox(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    result = await adapter_for(http, sandbox.url).create_payment(REQUEST)

    assert result.outcome is ProviderOutcome.PROCESSING
    assert result.provider_status == "ACT"
    assert result.provider_reference.startswith("payment_")
    assert result.provider_request_id
    assert result.http_status == 200


async def test_retry_after_timeout_reuses_payment(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, delay_seconds=0.3)
    adapter = adapter_for(http, sandbox.url, timeout_seconds=0.1)
    with pytest.raises(ProviderTimeoutError):
        await adapter.create_payment(REQUEST)
    async with http.post(sandbox.url + "/_sandbox/reset"):
        pass

    first = await adapter.create_payment(REQUEST)
    second = await adapter.create_payment(REQUEST)

    assert first.provider_reference == second.provider_reference
    assert (await stats(http, sandbox))["charges"] == 1


@pytest.mark.parametrize(
    ("payment_status", "outcome"),
    [
        ("ACT", ProviderOutcome.PROCESSING),
        ("NEW", ProviderOutcome.PROCESSING),
        ("CLO", ProviderOutcome.SUCCEEDED),
        ("CAN", ProviderOutcome.FAILED),
        ("ERR", ProviderOutcome.FAILED),
        ("EXP", ProviderOutcome.FAILED),
    ],
)
async def test_payment_status_maps_to_outcome(
    http: aiohttp.ClientSession,
    stub_rapyd: StubRapyd,
    payment_status: str,
    outcome: ProviderOutcome,
) -> None:
    stub_rapyd.reply(200, envelope({"id": "payment_1", "status": payment_status}))

    result = await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert result.outcome is outcome


async def test_failed_payment_carries_failure(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    data = {
        "id": "payment_1",
        "status": "ERR",
        "failure_code": "ERROR_CARD_DECLINED",
        "failure_message": "Do not honor",
    }
    stub_rapyd.reply(200, envelope(data))

    result = await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert result.error_code == "ERROR_CARD_DECLINED"
    assert result.error_message == "Do not honor"
    assert result.provider_request_id == "op-uuid-1"


async def test_unknown_status_is_processing_with_warning(
    http: aiohttp.ClientSession,
    stub_rapyd: StubRapyd,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub_rapyd.reply(200, envelope({"id": "payment_1", "status": "XYZ"}))

    with caplog.at_level(logging.WARNING, logger="adapters.rapyd.client"):
        result = await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert result.outcome is ProviderOutcome.PROCESSING
    assert "XYZ" in caplog.text


async def test_logs_contain_no_secrets(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="adapters.rapyd"):
        await adapter_for(http, sandbox.url).create_payment(REQUEST)

    assert "op-1" in caplog.text
    assert SECRET_KEY not in caplog.text
    assert "Zürich" not in caplog.text


async def test_5xx_is_unavailable(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, fail_next=1, fail_status=503)

    with pytest.raises(ProviderUnavailableError) as raised:
        await adapter_for(http, sandbox.url).create_payment(REQUEST)

    assert raised.value.provider == "rapyd"
    assert raised.value.provider_http_status == 503
    assert raised.value.retryable


async def test_429_is_rate_limited(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, fail_next=1, fail_status=429)

    with pytest.raises(ProviderRateLimitedError) as raised:
        await adapter_for(http, sandbox.url).create_payment(REQUEST)

    assert raised.value.retry_after == 1.0
    assert raised.value.provider_http_status == 429


async def test_429_with_http_date_retry_after(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(429, b"", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    with pytest.raises(ProviderRateLimitedError) as raised:
        await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert raised.value.retry_after == 0.0


async def test_wrong_secret_is_auth_error(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    with pytest.raises(ProviderAuthError) as raised:
        await adapter_for(http, sandbox.url, secret_key="wrong").create_payment(REQUEST)

    assert raised.value.provider_http_status == 401
    assert raised.value.provider_code == "UNAUTHENTICATED_API_CALL"
    assert not raised.value.retryable


async def test_missing_auth_headers_is_auth_error(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(
        400,
        envelope(
            None,
            status="ERROR",
            error_code="MISSING_AUTHENTICATION_HEADERS",
            message="missing headers",
        ),
    )

    with pytest.raises(ProviderAuthError) as raised:
        await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert raised.value.provider_code == "MISSING_AUTHENTICATION_HEADERS"


async def test_400_error_envelope_is_rejected(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    request = PaymentRequest(
        operation_id="op-3",
        idempotency_key="idem-3",
        amount=Decimal("0"),
        currency="EUR",
        country="DE",
        payment_method_type="de_visa_card",
    )

    with pytest.raises(ProviderRejectedError) as raised:
        await adapter_for(http, sandbox.url).create_payment(request)

    assert raised.value.provider_http_status == 400
    assert raised.value.provider_code == "ERROR_AMOUNT_MUST_BE_POSITIVE"
    assert raised.value.message == "The amount must be positive."


async def test_200_error_envelope_is_rejected(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd
) -> None:
    stub_rapyd.reply(
        200,
        envelope(None, status="ERROR", error_code="ERROR_X", message="declined"),
    )

    with pytest.raises(ProviderRejectedError) as raised:
        await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert raised.value.provider_code == "ERROR_X"
    assert raised.value.provider_http_status == 200


async def test_timeout_is_provider_timeout(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    await set_faults(http, sandbox, hang_next=1)

    with pytest.raises(ProviderTimeoutError) as raised:
        await adapter_for(http, sandbox.url, timeout_seconds=0.2).create_payment(
            REQUEST
        )

    assert raised.value.provider == "rapyd"
    assert raised.value.retryable


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"[]",
        b'{"status":{"status":"SUCCESS"},"data":null}',
        b'{"status":{"status":"SUCCESS"},"data":{"status":"ACT"}}',
        b'{"data":{"id":"payment_1","status":"ACT"}}',
    ],
)
async def test_malformed_2xx_is_unavailable(
    http: aiohttp.ClientSession, stub_rapyd: StubRapyd, body: bytes
) -> None:
    stub_rapyd.reply(200, body)

    with pytest.raises(ProviderUnavailableError) as raised:
        await adapter_for(http, stub_rapyd.url).create_payment(REQUEST)

    assert raised.value.provider_http_status == 200


async def test_connection_refused_is_unavailable(
    http: aiohttp.ClientSession,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ProviderUnavailableError) as raised:
        await adapter_for(http, f"http://127.0.0.1:{port}").create_payment(REQUEST)

    assert raised.value.provider_http_status is None
