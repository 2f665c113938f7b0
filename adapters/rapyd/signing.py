"""Rapyd request and webhook signatures.

Rapyd signs with HMAC-SHA256 keyed with the secret key, takes the lowercase hex
digest and sends base64 of that hex string (88 characters). Base64 of the raw
32-byte digest is a different string, and Rapyd rejects it.

Every function here works on the exact bytes that travel over the wire: the
body is never decoded or re-serialised between signing and sending.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from typing import Any

SALT_LENGTH = 12
_SALT_ALPHABET = string.ascii_letters + string.digits

# Rapyd's own sample code signs an empty JSON object as an empty body.
_BODIES_SIGNED_AS_EMPTY = (b"", b"{}")


def compact_json(payload: Any) -> bytes:
    """Serialise ``payload`` as compact UTF-8 JSON, the form Rapyd signs.

    Non-ASCII text is kept as UTF-8 instead of ``\\u`` escapes. Raises
    ``TypeError`` naming the key path of any float, so that an amount never
    passes through binary floating point.
    """
    _reject_floats(payload, "payload")
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _reject_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise TypeError(
            f"{path} is a float ({value!r}). Send amounts as int or decimal str"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")


def request_signature(
    *,
    method: str,
    url_path: str,
    salt: str,
    timestamp: int | str,
    access_key: str,
    secret_key: str,
    body: bytes,
) -> str:
    """Compute the ``signature`` header of a Rapyd REST request.

    ``url_path`` is everything after the host, starting with ``/v1``, with the
    query string exactly as sent. ``body`` is the exact request body.
    """
    prefix = f"{method.lower()}{url_path}{salt}{timestamp}{access_key}{secret_key}"
    signed_body = b"" if body in _BODIES_SIGNED_AS_EMPTY else body
    return _hex_hmac_base64(secret_key, prefix.encode("utf-8") + signed_body)


def webhook_signature(
    *,
    webhook_url: str,
    salt: str,
    timestamp: int | str,
    access_key: str,
    secret_key: str,
    body: bytes,
) -> str:
    """Compute the ``signature`` header of a Rapyd webhook.

    ``webhook_url`` is the full URL as registered with Rapyd, never one rebuilt
    from the incoming request, because a proxy changes scheme, host or port.
    """
    prefix = f"{webhook_url}{salt}{timestamp}{access_key}{secret_key}"
    return _hex_hmac_base64(secret_key, prefix.encode("utf-8") + body)


def _hex_hmac_base64(secret_key: str, message: bytes) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256)
    hex_digest = digest.hexdigest().encode("ascii")
    return base64.b64encode(hex_digest).decode("ascii")


def new_salt() -> str:
    """Return a random alphanumeric salt of ``SALT_LENGTH`` characters."""
    return "".join(secrets.choice(_SALT_ALPHABET) for _ in range(SALT_LENGTH))


def signed_request_headers(
    *,
    method: str,
    url_path: str,
    access_key: str,
    secret_key: str,
    body: bytes,
    idempotency_key: str | None = None,
    salt: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Build the authentication headers of a Rapyd REST request.

    ``salt`` and ``timestamp`` default to a fresh salt and the current Unix
    time in seconds. The ``idempotency`` header is added when a key is given.
    """
    salt = new_salt() if salt is None else salt
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = request_signature(
        method=method,
        url_path=url_path,
        salt=salt,
        timestamp=timestamp,
        access_key=access_key,
        secret_key=secret_key,
        body=body,
    )
    headers = {
        "access_key": access_key,
        "salt": salt,
        "timestamp": str(timestamp),
        "signature": signature,
        "Content-Type": "application/json",
    }
    if idempotency_key is not None:
        headers["idempotency"] = idempotency_key
    return headers


def verify_signature(expected: str, received: str) -> bool:
    """Compare two signatures in constant time.

    Both are compared as UTF-8 bytes, so a non-ASCII header value returns
    False instead of raising.
    """
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))
