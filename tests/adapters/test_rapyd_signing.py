from __future__ import annotations

import base64
import hashlib
import hmac
import string

import pytest

from adapters.rapyd.signing import (
    SALT_LENGTH,
    compact_json,
    new_salt,
    request_signature,
    signed_request_headers,
    verify_signature,
    webhook_signature,
)

SECRET = "rapyd-test-secret"
ACCESS = "rapyd-test-access"


def expected_signature(secret: str, message: bytes) -> str:
    hex_digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return base64.b64encode(hex_digest.encode()).decode()


def sign_request(
    body: bytes, method: str = "post", url_path: str = "/v1/payments"
) -> str:
    return request_signature(
        method=method,
        url_path=url_path,
        salt="abcdefgh1234",
        timestamp=1700000000,
        access_key=ACCESS,
        secret_key=SECRET,
        body=body,
    )


def test_request_signature_is_base64_of_lowercase_hex() -> None:
    signature = sign_request(b'{"amount":10}')

    decoded = base64.b64decode(signature).decode("ascii")

    assert len(signature) == 88
    assert len(decoded) == 64
    assert set(decoded) <= set("0123456789abcdef")


def test_request_signature_matches_independent_hmac() -> None:
    body = '{"amount":10,"description":"Zürich"}'.encode()
    message = (
        b"post/v1/payments?x=1abcdefgh12341700000000"
        + ACCESS.encode()
        + SECRET.encode()
        + body
    )

    signature = sign_request(body, url_path="/v1/payments?x=1")

    assert signature == expected_signature(SECRET, message)


def test_request_signature_is_not_raw_digest_base64() -> None:
    body = b'{"amount":10}'
    message = b"post/v1/paymentsabcdefgh12341700000000" + ACCESS.encode()
    raw_digest = hmac.new(
        SECRET.encode(), message + SECRET.encode() + body, hashlib.sha256
    ).digest()

    assert sign_request(body) != base64.b64encode(raw_digest).decode()


def test_request_signature_lowercases_method() -> None:
    assert sign_request(b"", method="GET") == sign_request(b"", method="get")


def test_empty_body_signs_as_empty_string() -> None:
    message = b"get/v1/paymentsabcdefgh12341700000000" + ACCESS.encode()
    message += SECRET.encode()

    assert sign_request(b"", method="get") == expected_signature(SECRET, message)


def test_empty_object_body_signs_as_empty_string() -> None:
    assert sign_request(b"{}") == sign_request(b"")


def test_request_signature_covers_body() -> None:
    assert sign_request(b'{"amount":10}') != sign_request(b'{"amount":11}')


def test_webhook_signature_matches_independent_hmac() -> None:
    body = b'{"id":"wh_1","type":"PAYMENT_COMPLETED"}'
    url = "https://hub.example.com/webhooks/rapyd"
    message = (url + "salt12345678" + "1700000000" + ACCESS + SECRET).encode() + body

    signature = webhook_signature(
        webhook_url=url,
        salt="salt12345678",
        timestamp="1700000000",
        access_key=ACCESS,
        secret_key=SECRET,
        body=body,
    )

    assert signature == expected_signature(SECRET, message)


def test_compact_json_keeps_non_ascii() -> None:
    body = compact_json({"description": "Zürich café 東京"})

    assert "Zürich café 東京".encode() in body
    assert b"\\u" not in body


def test_compact_json_has_no_whitespace() -> None:
    body = compact_json({"amount": 10, "metadata": {"a": [1, 2]}})

    assert body == b'{"amount":10,"metadata":{"a":[1,2]}}'


def test_compact_json_rejects_float_with_key_path() -> None:
    with pytest.raises(TypeError) as raised:
        compact_json({"items": [{"price": 1}, {"price": 12.5}]})

    assert "payload.items[1].price" in str(raised.value)


def test_compact_json_rejects_top_level_float() -> None:
    with pytest.raises(TypeError):
        compact_json(0.1)


def test_signed_request_headers_fields() -> None:
    headers = signed_request_headers(
        method="post",
        url_path="/v1/payments",
        access_key=ACCESS,
        secret_key=SECRET,
        body=b'{"amount":10}',
        idempotency_key="op-1",
        salt="abcdefgh1234",
        timestamp=1700000000,
    )

    assert headers["access_key"] == ACCESS
    assert headers["salt"] == "abcdefgh1234"
    assert headers["timestamp"] == "1700000000"
    assert headers["signature"] == sign_request(b'{"amount":10}')
    assert headers["Content-Type"] == "application/json"
    assert headers["idempotency"] == "op-1"


def test_signed_request_headers_without_idempotency() -> None:
    headers = signed_request_headers(
        method="get",
        url_path="/v1/payments/payment_1",
        access_key=ACCESS,
        secret_key=SECRET,
        body=b"",
    )

    assert "idempotency" not in headers
    assert len(headers["salt"]) == SALT_LENGTH
    assert headers["timestamp"].isdigit()


def test_new_salt_is_random_alphanumeric() -> None:
    salts = {new_salt() for _ in range(50)}

    assert len(salts) == 50
    for salt in salts:
        assert len(salt) == SALT_LENGTH
        assert set(salt) <= set(string.ascii_letters + string.digits)


def test_verify_signature_matches_equal() -> None:
    assert verify_signature("abc", "abc")


def test_verify_signature_rejects_different() -> None:
    assert not verify_signature("abc", "abd")


def test_verify_signature_rejects_non_ascii() -> None:
    assert not verify_signature("abc", "äbc")
