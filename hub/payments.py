"""Validation and fingerprinting of payment requests.

Every field is checked before anything is stored, and all violations are
reported together, each naming its field and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import pycountry

from hub import money
from hub.errors import FieldViolation, ValidationError
from integrations.v1 import hub_pb2

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_CUSTOMER_ID_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 1024
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 512

# Printable ASCII without spaces, so keys survive logs and headers intact.
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]+$")
PAYMENT_METHOD_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass(frozen=True)
class NewPayment:
    """A validated CreatePayment request."""

    idempotency_key: str
    country: str
    amount_minor: int
    currency: str
    currency_exponent: int
    payment_method_type: str
    customer_id: str = ""
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Hash every field except the idempotency key.

        Amounts enter as minor units, so "12.5" and "12.50" are one request.
        """
        canonical = {
            "type": "payment",
            "country": self.country,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "payment_method_type": self.payment_method_type,
            "customer_id": self.customer_id,
            "description": self.description,
            "metadata": self.metadata,
        }
        encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def validate_idempotency_key(key: str, violations: list[FieldViolation]) -> None:
    if not key:
        violations.append(
            FieldViolation(
                "idempotency_key", "is required; send a unique key per request"
            )
        )
    elif len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        violations.append(
            FieldViolation(
                "idempotency_key",
                f"is {len(key)} characters long; the maximum is "
                f"{MAX_IDEMPOTENCY_KEY_LENGTH}",
            )
        )
    elif not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        violations.append(
            FieldViolation(
                "idempotency_key",
                "must contain only printable ASCII characters without spaces",
            )
        )


def _validate_country(country: str, violations: list[FieldViolation]) -> None:
    if not re.fullmatch(r"[A-Z]{2}", country):
        violations.append(
            FieldViolation(
                "country", "must be an upper-case ISO 3166-1 alpha-2 code, e.g. DE"
            )
        )
    elif pycountry.countries.get(alpha_2=country) is None:
        violations.append(
            FieldViolation("country", f"unknown ISO 3166-1 alpha-2 code {country!r}")
        )


def _validate_amount(
    amount: str, currency: str, violations: list[FieldViolation]
) -> tuple[int, int]:
    try:
        exponent = money.currency_exponent(currency)
    except money.AmountError as exc:
        violations.append(FieldViolation("currency", str(exc)))
        return 0, 0
    if not amount:
        violations.append(
            FieldViolation("amount", "is required, as a decimal string such as '12.50'")
        )
        return 0, exponent
    try:
        return money.to_minor_units(amount, exponent), exponent
    except money.AmountError as exc:
        violations.append(FieldViolation("amount", f"{exc} ({currency})"))
        return 0, exponent


def _validate_texts(
    request: hub_pb2.CreatePaymentRequest, violations: list[FieldViolation]
) -> None:
    if not PAYMENT_METHOD_PATTERN.fullmatch(request.payment_method_type):
        violations.append(
            FieldViolation(
                "payment_method_type",
                "is required: 1 to 64 lower-case letters, digits or '_', "
                "e.g. de_visa_card",
            )
        )
    limits = (
        ("customer_id", request.customer_id, MAX_CUSTOMER_ID_LENGTH),
        ("description", request.description, MAX_DESCRIPTION_LENGTH),
    )
    for name, value, limit in limits:
        if "\x00" in value:
            violations.append(FieldViolation(name, "must not contain NUL characters"))
        if len(value) > limit:
            violations.append(
                FieldViolation(
                    name, f"is {len(value)} characters; the maximum is {limit}"
                )
            )
    if len(request.metadata) > MAX_METADATA_ENTRIES:
        violations.append(
            FieldViolation(
                "metadata", f"has {len(request.metadata)} entries; the maximum is 50"
            )
        )
    for key, value in request.metadata.items():
        if "\x00" in key or "\x00" in value:
            violations.append(
                FieldViolation(
                    f"metadata[{key[:64]!r}]", "must not contain NUL characters"
                )
            )
        if not key or len(key) > MAX_METADATA_KEY_LENGTH:
            violations.append(
                FieldViolation(
                    f"metadata[{key[:64]}]", "keys must be 1 to 64 characters"
                )
            )
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            violations.append(
                FieldViolation(
                    f"metadata[{key[:64]}]", "values must be at most 512 characters"
                )
            )


def validate_create_payment(request: hub_pb2.CreatePaymentRequest) -> NewPayment:
    """Return the validated payment or raise ``ValidationError``."""
    violations: list[FieldViolation] = []
    validate_idempotency_key(request.idempotency_key, violations)
    _validate_country(request.country, violations)
    amount_minor, exponent = _validate_amount(
        request.amount, request.currency, violations
    )
    _validate_texts(request, violations)
    if violations:
        raise ValidationError(violations)

    return NewPayment(
        idempotency_key=request.idempotency_key,
        country=request.country,
        amount_minor=amount_minor,
        currency=request.currency,
        currency_exponent=exponent,
        payment_method_type=request.payment_method_type,
        customer_id=request.customer_id,
        description=request.description,
        metadata=dict(sorted(request.metadata.items())),
    )
