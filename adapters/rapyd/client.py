"""Rapyd payment adapter: the Create Payment call and its outcome mapping."""

from __future__ import annotations

import json
import logging
import math
import time
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from adapters.base import PaymentRequest, PaymentResult, ProviderOutcome
from adapters.rapyd.config import RapydConfig
from adapters.rapyd.signing import compact_json, signed_request_headers
from hub.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)

logger = logging.getLogger(__name__)

PROVIDER = "rapyd"
PAYMENTS_PATH = "/v1/payments"

# Rapyd payment statuses: ACT (active) and NEW wait for the customer or a third
# party, CLO (closed) means the funds arrived, and CAN, ERR and EXP are final
# failures.
_OUTCOME_BY_PAYMENT_STATUS = {
    "ACT": ProviderOutcome.PROCESSING,
    "NEW": ProviderOutcome.PROCESSING,
    "CLO": ProviderOutcome.SUCCEEDED,
    "CAN": ProviderOutcome.FAILED,
    "ERR": ProviderOutcome.FAILED,
    "EXP": ProviderOutcome.FAILED,
}

_AUTH_ERROR_CODES = frozenset(
    {"UNAUTHENTICATED_API_CALL", "MISSING_AUTHENTICATION_HEADERS"}
)


def rapyd_amount(amount: Decimal) -> int | str:
    """Convert an amount to the JSON value Rapyd accepts.

    A whole amount becomes an int and any other becomes a plain decimal
    string (``"12.50"``), because Rapyd rejects unexpected decimal points and
    an amount must never pass through a float.
    """
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    if amount == amount.to_integral_value():
        return int(amount)
    return format(amount, "f")


def payment_body(request: PaymentRequest) -> dict[str, Any]:
    """Build the Create Payment body for ``request``.

    ``request.country`` is not sent, because Create Payment has no top-level
    country field and the payment method type already starts with the
    country (``de_visa_card``).
    """
    metadata = dict(request.metadata)
    if request.customer_id:
        # A separate key, so a caller's own "customer_id" entry survives.
        metadata["hub_customer_id"] = request.customer_id
    return {
        "amount": rapyd_amount(request.amount),
        "currency": request.currency,
        "payment_method": {"type": request.payment_method_type},
        "merchant_reference_id": request.operation_id,
        "description": request.description,
        "metadata": metadata,
    }


class RapydAdapter:
    """Creates payments through Rapyd's REST API."""

    provider = PROVIDER

    def __init__(self, config: RapydConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        """Send Create Payment and map the response to a ``PaymentResult``.

        Raises the ``ProviderError`` subclass that matches the failure. The
        ``idempotency`` header makes a retry after a timeout or a 5xx safe.
        """
        started = time.monotonic()
        try:
            http_status, response_headers, raw = await self._post_payment(request)
            result = _result_from_response(http_status, response_headers, raw)
        except ProviderError as exc:
            logger.info(
                "rapyd create_payment operation_id=%s failed: %s "
                "http_status=%s provider_code=%s elapsed_ms=%d",
                request.operation_id,
                exc.reason,
                exc.provider_http_status,
                exc.provider_code,
                _elapsed_ms(started),
            )
            raise
        logger.info(
            "rapyd create_payment operation_id=%s outcome=%s provider_status=%s "
            "provider_reference=%s provider_request_id=%s elapsed_ms=%d",
            request.operation_id,
            result.outcome.value,
            result.provider_status,
            result.provider_reference,
            result.provider_request_id,
            _elapsed_ms(started),
        )
        return result

    async def _post_payment(
        self, request: PaymentRequest
    ) -> tuple[int, dict[str, str], bytes]:
        body = compact_json(payment_body(request))
        headers = signed_request_headers(
            method="post",
            url_path=PAYMENTS_PATH,
            access_key=self._config.access_key,
            secret_key=self._config.secret_key,
            body=body,
            idempotency_key=request.idempotency_key,
        )
        url = self._config.base_url.rstrip("/") + PAYMENTS_PATH
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_seconds)
        try:
            async with self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                return response.status, dict(response.headers), raw
        # ServerTimeoutError is also a ClientError, so timeouts go first.
        except TimeoutError as exc:
            raise ProviderTimeoutError(
                f"rapyd did not respond within {self._config.timeout_seconds} s",
                provider=PROVIDER,
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailableError(
                f"rapyd request failed: {type(exc).__name__}: {exc}",
                provider=PROVIDER,
            ) from exc


def _result_from_response(
    http_status: int, headers: dict[str, str], raw: bytes
) -> PaymentResult:
    envelope = _parse_envelope(raw)
    status_block = _status_block(envelope)
    error_code = _text(status_block.get("error_code")) or None
    message = _text(status_block.get("message")) or None
    if http_status == 429:
        raise ProviderRateLimitedError(
            message or "rapyd rate limit reached",
            retry_after=_retry_after_seconds(headers.get("Retry-After")),
            provider=PROVIDER,
            http_status=http_status,
            provider_code=error_code,
        )
    if http_status >= 500:
        raise ProviderUnavailableError(
            f"rapyd returned HTTP {http_status}: {message or 'no message'}",
            provider=PROVIDER,
            http_status=http_status,
            provider_code=error_code,
        )
    if http_status == 401 or error_code in _AUTH_ERROR_CODES:
        raise ProviderAuthError(
            f"rapyd rejected the credentials or signature: {message or error_code}",
            provider=PROVIDER,
            http_status=http_status,
            provider_code=error_code,
        )
    if 400 <= http_status < 500 or status_block.get("status") == "ERROR":
        raise ProviderRejectedError(
            message or f"rapyd rejected the payment with HTTP {http_status}",
            provider=PROVIDER,
            http_status=http_status,
            provider_code=error_code,
        )
    if not 200 <= http_status < 300:
        raise ProviderUnavailableError(
            f"rapyd returned unexpected HTTP {http_status}",
            provider=PROVIDER,
            http_status=http_status,
            provider_code=error_code,
        )
    return _success_result(http_status, envelope, status_block)


def _success_result(
    http_status: int, envelope: dict[str, Any] | None, status_block: dict[str, Any]
) -> PaymentResult:
    # A 2xx whose body is not a success envelope leaves it unknown whether the
    # payment exists. Retrying is safe because the idempotency key replays it.
    data = envelope.get("data") if envelope is not None else None
    payment_id = data.get("id") if isinstance(data, dict) else None
    if (
        status_block.get("status") != "SUCCESS"
        or not isinstance(data, dict)
        or not isinstance(payment_id, str)
        or not payment_id
    ):
        raise ProviderUnavailableError(
            f"rapyd returned HTTP {http_status} without a valid payment envelope",
            provider=PROVIDER,
            http_status=http_status,
        )

    payment_status = _text(data.get("status"))
    outcome = _OUTCOME_BY_PAYMENT_STATUS.get(payment_status)
    if outcome is None:
        logger.warning(
            "rapyd payment %s has unknown status %r, so it is treated as processing",
            payment_id,
            payment_status,
        )
        outcome = ProviderOutcome.PROCESSING

    error_code = None
    error_message = None
    if outcome is ProviderOutcome.FAILED:
        error_code = (
            _text(data.get("failure_code"))
            or _text(data.get("error_code"))
            or payment_status
        )
        error_message = _text(data.get("failure_message")) or None

    return PaymentResult(
        outcome=outcome,
        provider_reference=payment_id,
        provider_status=payment_status,
        http_status=http_status,
        provider_request_id=_text(status_block.get("operation_id")) or None,
        error_code=error_code,
        error_message=error_message,
    )


def _parse_envelope(raw: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _status_block(envelope: dict[str, Any] | None) -> dict[str, Any]:
    status = envelope.get("status") if envelope is not None else None
    return status if isinstance(status, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date) into seconds, or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
