from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from adapters.base import ProviderOutcome
from adapters.rapyd.config import RapydConfig
from adapters.rapyd.signing import webhook_signature
from adapters.rapyd.webhooks import RapydWebhookVerifier
from hub.errors import WebhookPayloadError, WebhookSignatureError

WEBHOOK_URL = "https://hub.example.com/webhooks/rapyd"
NOW = 1_700_000_000
BODY = b'{"id":"wh_1","type":"PAYMENT_COMPLETED","data":{"id":"payment_1"}}'

CONFIG = RapydConfig(
    base_url="https://sandboxapi.rapyd.net",
    access_key="access",
    secret_key="secret",
    webhook_url=WEBHOOK_URL,
)


def signed_headers(
    body: bytes = BODY, *, timestamp: int = NOW, url: str = WEBHOOK_URL
) -> dict[str, str]:
    signature = webhook_signature(
        webhook_url=url,
        salt="salt12345678",
        timestamp=timestamp,
        access_key=CONFIG.access_key,
        secret_key=CONFIG.secret_key,
        body=body,
    )
    return {"salt": "salt12345678", "timestamp": str(timestamp), "signature": signature}


@pytest.fixture
def verifier() -> RapydWebhookVerifier:
    return RapydWebhookVerifier(CONFIG)


def test_verify_accepts_valid_signature(verifier: RapydWebhookVerifier) -> None:
    verifier.verify(signed_headers(), BODY, now=NOW)


def test_verify_ignores_header_case(verifier: RapydWebhookVerifier) -> None:
    headers = {name.upper(): value for name, value in signed_headers().items()}

    verifier.verify(headers, BODY, now=NOW)


def test_verify_accepts_edge_of_tolerance(verifier: RapydWebhookVerifier) -> None:
    verifier.verify(signed_headers(), BODY, now=NOW + 300)


def test_verify_rejects_tampered_body(verifier: RapydWebhookVerifier) -> None:
    tampered = BODY.replace(b"payment_1", b"payment_2")

    with pytest.raises(WebhookSignatureError):
        verifier.verify(signed_headers(), tampered, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_verify_rejects_timestamp_outside_tolerance(
    verifier: RapydWebhookVerifier, offset: int
) -> None:
    with pytest.raises(WebhookSignatureError, match="300 s tolerance"):
        verifier.verify(signed_headers(), BODY, now=NOW + offset)


@pytest.mark.parametrize("missing", ["salt", "timestamp", "signature"])
def test_verify_rejects_missing_header(
    verifier: RapydWebhookVerifier, missing: str
) -> None:
    headers = signed_headers()
    del headers[missing]

    with pytest.raises(WebhookSignatureError, match=missing):
        verifier.verify(headers, BODY, now=NOW)


@pytest.mark.parametrize("timestamp", ["abc", "1.5", "-1", "1_700_000_000", ""])
def test_verify_rejects_non_integer_timestamp(
    verifier: RapydWebhookVerifier, timestamp: str
) -> None:
    headers = signed_headers()
    headers["timestamp"] = timestamp

    with pytest.raises(WebhookSignatureError):
        verifier.verify(headers, BODY, now=NOW)


def test_verify_rejects_other_webhook_url(verifier: RapydWebhookVerifier) -> None:
    headers = signed_headers(url="http://10.0.0.5:8080/webhooks/rapyd")

    with pytest.raises(WebhookSignatureError, match="does not match"):
        verifier.verify(headers, BODY, now=NOW)


def test_verify_rejects_raw_digest_base64(verifier: RapydWebhookVerifier) -> None:
    message = (
        WEBHOOK_URL + "salt12345678" + str(NOW) + CONFIG.access_key + CONFIG.secret_key
    ).encode() + BODY
    raw_digest = hmac.new(b"secret", message, hashlib.sha256).digest()
    headers = signed_headers()
    headers["signature"] = base64.b64encode(raw_digest).decode()

    with pytest.raises(WebhookSignatureError):
        verifier.verify(headers, BODY, now=NOW)


def event_body(event_type: str, **data: object) -> bytes:
    event = {"id": "wh_abc", "type": event_type, "data": data}
    return json.dumps(event).encode()


def test_parse_completed_event(verifier: RapydWebhookVerifier) -> None:
    body = event_body("PAYMENT_COMPLETED", id="payment_1", merchant_reference_id="op-1")

    event = verifier.parse_event(body)

    assert event.event_id == "wh_abc"
    assert event.event_type == "PAYMENT_COMPLETED"
    assert event.provider_reference == "payment_1"
    assert event.merchant_reference == "op-1"
    assert event.outcome is ProviderOutcome.SUCCEEDED
    assert event.error_code is None


def test_parse_failed_event_with_failure_code(verifier: RapydWebhookVerifier) -> None:
    body = event_body(
        "PAYMENT_FAILED",
        id="payment_1",
        failure_code="ERROR_3DS_AUTHENTICATION_FAILURE",
        failure_message="3-D Secure failed",
    )

    event = verifier.parse_event(body)

    assert event.outcome is ProviderOutcome.FAILED
    assert event.error_code == "ERROR_3DS_AUTHENTICATION_FAILURE"
    assert event.error_message == "3-D Secure failed"


@pytest.mark.parametrize(
    "event_type", ["PAYMENT_FAILED", "PAYMENT_CANCELED", "PAYMENT_EXPIRED"]
)
def test_parse_failure_types_default_code(
    verifier: RapydWebhookVerifier, event_type: str
) -> None:
    event = verifier.parse_event(event_body(event_type, id="payment_1"))

    assert event.outcome is ProviderOutcome.FAILED
    assert event.error_code == event_type
    assert event.error_message is None


@pytest.mark.parametrize(
    "event_type", ["PAYMENT_SUCCEEDED", "REFUND_COMPLETED", "PAYMENT_UPDATED"]
)
def test_parse_other_types_have_no_outcome(
    verifier: RapydWebhookVerifier, event_type: str
) -> None:
    event = verifier.parse_event(event_body(event_type, id="payment_1"))

    assert event.outcome is None
    assert event.provider_reference == "payment_1"


def test_parse_event_without_data(verifier: RapydWebhookVerifier) -> None:
    event = verifier.parse_event(b'{"id":"wh_1","type":"PAYMENT_COMPLETED"}')

    assert event.provider_reference is None
    assert event.merchant_reference is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"type":"PAYMENT_COMPLETED"}', "id"),
        (b'{"id":"","type":"PAYMENT_COMPLETED"}', "id"),
        (b'{"id":7,"type":"PAYMENT_COMPLETED"}', "id"),
        (b'{"id":"wh_1"}', "type"),
        (b'{"id":"wh_1","type":5}', "type"),
        (b'{"id":"wh_1","type":"PAYMENT_COMPLETED","data":[]}', "data"),
        (b'{"id":"wh_1","type":"PAYMENT_COMPLETED","data":{"id":5}}', "data.id"),
        (b"not json", "JSON"),
        (b"[1, 2]", "object"),
    ],
)
def test_parse_rejects_invalid_body(
    verifier: RapydWebhookVerifier, body: bytes, field: str
) -> None:
    with pytest.raises(WebhookPayloadError, match=field):
        verifier.parse_event(body)


def test_parse_rejects_overlong_id(verifier: RapydWebhookVerifier) -> None:
    body = json.dumps({"id": "w" * 256, "type": "PAYMENT_COMPLETED"}).encode()

    with pytest.raises(WebhookPayloadError, match="255"):
        verifier.parse_event(body)


def test_parse_accepts_max_length_id(verifier: RapydWebhookVerifier) -> None:
    body = json.dumps({"id": "w" * 255, "type": "PAYMENT_COMPLETED"}).encode()

    assert verifier.parse_event(body).event_id == "w" * 255
