"""The interface every provider adapter implements.

Adapters translate the hub's provider-neutral requests into one provider's
wire protocol and back. They raise the ``ProviderError`` subtree of
``hub.errors`` for failures, so the worker can decide between a retry and a
permanent failure without knowing the provider.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class ProviderOutcome(enum.Enum):
    """Effect of a provider response or event on the hub's operation."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentRequest:
    """A payment to create, in provider-neutral terms.

    ``amount`` is in major units (``Decimal("12.50")`` for 12.50 EUR) and is
    already validated against the currency's minor units.
    """

    operation_id: str
    idempotency_key: str
    amount: Decimal
    currency: str
    country: str
    payment_method_type: str
    description: str = ""
    customer_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentResult:
    """The provider's response to a create-payment call that it accepted."""

    outcome: ProviderOutcome
    provider_reference: str
    provider_status: str
    http_status: int
    provider_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class InboundEvent:
    """A verified provider webhook, reduced to what the hub acts on.

    ``merchant_reference`` is the hub operation id that the hub sent to the
    provider when it created the payment. ``outcome`` is None for event
    types that change no operation.
    """

    event_id: str
    event_type: str
    provider_reference: str | None
    merchant_reference: str | None
    outcome: ProviderOutcome | None
    error_code: str | None = None
    error_message: str | None = None


class PaymentAdapter(Protocol):
    """Creates payments at one provider."""

    provider: str

    async def create_payment(self, request: PaymentRequest) -> PaymentResult: ...


class WebhookVerifier(Protocol):
    """Verifies and parses one provider's inbound webhooks."""

    provider: str

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float) -> None:
        """Raise ``WebhookSignatureError`` unless ``body`` is signed correctly."""

    def parse_event(self, body: bytes) -> InboundEvent:
        """Raise ``WebhookPayloadError`` when the body is not a usable event."""
