"""Verification and parsing of Rapyd webhooks."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from adapters.base import InboundEvent, ProviderOutcome
from adapters.rapyd.config import RapydConfig
from adapters.rapyd.signing import verify_signature, webhook_signature
from hub.errors import WebhookPayloadError, WebhookSignatureError

REQUIRED_HEADERS = ("salt", "timestamp", "signature")
MAX_EVENT_ID_LENGTH = 255
# The hub stores event types in a 128-character column.
MAX_EVENT_TYPE_LENGTH = 128
# Ids and codes in ``data`` are short; a longer value is not Rapyd's.
MAX_DATA_TEXT_LENGTH = 255

_TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")

# PAYMENT_SUCCEEDED is left out on purpose: Rapyd sends it when a payment is
# created (status ACT, not paid yet), so it does not mean the funds arrived.
_SUCCEEDED_TYPES = frozenset({"PAYMENT_COMPLETED"})
_FAILED_TYPES = frozenset({"PAYMENT_FAILED", "PAYMENT_CANCELED", "PAYMENT_EXPIRED"})


class RapydWebhookVerifier:
    """Checks Rapyd webhook signatures and turns events into ``InboundEvent``."""

    provider = "rapyd"

    def __init__(self, config: RapydConfig) -> None:
        self._config = config

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float) -> None:
        """Raise ``WebhookSignatureError`` unless ``body`` is signed correctly.

        Header names are matched case-insensitively. ``now`` is Unix time in
        seconds, and the timestamp may differ from it by at most
        ``webhook_tolerance_seconds`` in either direction.
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in REQUIRED_HEADERS if not lowered.get(name)]
        if missing:
            raise WebhookSignatureError(
                f"rapyd webhook is missing header(s): {', '.join(missing)}"
            )

        timestamp_text = lowered["timestamp"].strip()
        if not _TIMESTAMP_PATTERN.fullmatch(timestamp_text):
            raise WebhookSignatureError(
                "rapyd webhook timestamp header is not an integer Unix time"
            )
        tolerance = self._config.webhook_tolerance_seconds
        if abs(now - int(timestamp_text)) > tolerance:
            raise WebhookSignatureError(
                f"rapyd webhook timestamp {timestamp_text} is outside the "
                f"{tolerance} s tolerance"
            )

        expected = webhook_signature(
            webhook_url=self._config.webhook_url,
            salt=lowered["salt"],
            timestamp=timestamp_text,
            access_key=self._config.access_key,
            secret_key=self._config.secret_key,
            body=body,
        )
        if not verify_signature(expected, lowered["signature"]):
            raise WebhookSignatureError(
                "rapyd webhook signature does not match. Check the secret key "
                "and the configured webhook_url"
            )

    def parse_event(self, body: bytes) -> InboundEvent:
        """Parse a verified webhook body.

        Raises ``WebhookPayloadError`` naming the field when the body is not a
        JSON object with a string ``id`` (1 to 255 characters) and ``type``.
        """
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise WebhookPayloadError("rapyd webhook body is not valid JSON") from exc
        except RecursionError as exc:
            raise WebhookPayloadError(
                "rapyd webhook body is nested too deeply"
            ) from exc
        if not isinstance(event, dict):
            raise WebhookPayloadError("rapyd webhook body is not a JSON object")

        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise WebhookPayloadError("rapyd webhook field id is missing or empty")
        if len(event_id) > MAX_EVENT_ID_LENGTH:
            raise WebhookPayloadError(
                f"rapyd webhook field id is longer than {MAX_EVENT_ID_LENGTH} "
                "characters"
            )
        event_type = event.get("type")
        if not isinstance(event_type, str) or not event_type:
            raise WebhookPayloadError("rapyd webhook field type is missing or empty")
        if len(event_type) > MAX_EVENT_TYPE_LENGTH:
            raise WebhookPayloadError(
                f"rapyd webhook field type is longer than {MAX_EVENT_TYPE_LENGTH} "
                "characters"
            )
        for name, text in (("id", event_id), ("type", event_type)):
            _check_storable(name, text)

        data = event.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise WebhookPayloadError("rapyd webhook field data is not an object")
        return _event_from_data(event_id, event_type, data)


def _event_from_data(
    event_id: str, event_type: str, data: dict[str, Any]
) -> InboundEvent:
    outcome: ProviderOutcome | None = None
    error_code = None
    error_message = None
    if event_type in _SUCCEEDED_TYPES:
        outcome = ProviderOutcome.SUCCEEDED
    elif event_type in _FAILED_TYPES:
        outcome = ProviderOutcome.FAILED
        # A long failure text is cut, not rejected, so the event still settles
        # the payment; the stored raw body keeps the full text.
        error_code = _optional_text(data, "failure_code", cut=True) or event_type
        error_message = _optional_text(data, "failure_message", cut=True)
    return InboundEvent(
        event_id=event_id,
        event_type=event_type,
        provider_reference=_optional_text(data, "id"),
        merchant_reference=_optional_text(data, "merchant_reference_id"),
        outcome=outcome,
        error_code=error_code,
        error_message=error_message,
    )


def _optional_text(data: dict[str, Any], field: str, cut: bool = False) -> str | None:
    """Return a text field of ``data``; with ``cut``, shorten an overlong one."""
    value = data.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError(f"rapyd webhook field data.{field} is not a string")
    if cut:
        value = value[:MAX_DATA_TEXT_LENGTH]
    if len(value) > MAX_DATA_TEXT_LENGTH:
        raise WebhookPayloadError(
            f"rapyd webhook field data.{field} is longer than {MAX_DATA_TEXT_LENGTH} "
            "characters"
        )
    _check_storable(f"data.{field}", value)
    return value


def _check_storable(field: str, value: str) -> None:
    """Reject text that PostgreSQL cannot store.

    JSON allows a NUL and lone surrogates such as "\\udc00", but neither
    survives encoding to UTF-8 for a text column.
    """
    if "\x00" in value:
        raise WebhookPayloadError(f"rapyd webhook field {field} contains NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookPayloadError(
            f"rapyd webhook field {field} is not valid Unicode text"
        ) from None
