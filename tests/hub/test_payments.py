from __future__ import annotations

import pytest

from hub.errors import ValidationError
from hub.payments import validate_create_payment
from integrations.v1 import hub_pb2


def request(**changes: object) -> hub_pb2.CreatePaymentRequest:
    fields: dict[str, object] = {
        "idempotency_key": "order-1",
        "country": "DE",
        "amount": "12.50",
        "currency": "EUR",
        "payment_method_type": "de_visa_card",
    }
    fields.update(changes)
    return hub_pb2.CreatePaymentRequest(**fields)


def violated_fields(error: ValidationError) -> set[str]:
    return {violation.field for violation in error.violations}


def test_valid_request_is_accepted() -> None:
    payment = validate_create_payment(request(metadata={"order": "42"}))

    assert payment.amount_minor == 1250
    assert payment.metadata == {"order": "42"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"idempotency_key": "has space"}, "idempotency_key"),
        ({"country": "XX"}, "country"),
        ({"country": "de"}, "country"),
        ({"country": ""}, "country"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"amount": ""}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "1.5", "currency": "JPY"}, "amount"),
        ({"payment_method_type": ""}, "payment_method_type"),
        ({"payment_method_type": "Visa Card"}, "payment_method_type"),
        ({"description": "d" * 1025}, "description"),
        ({"customer_id": "c" * 256}, "customer_id"),
        ({"description": "a\x00b"}, "description"),
        ({"customer_id": "\x00"}, "customer_id"),
    ],
)
def test_invalid_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_create_payment(request(**changes))

    assert violated_fields(caught.value) == {field}


def test_every_violation_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_create_payment(request(idempotency_key="", country="XX", amount="0"))

    assert violated_fields(caught.value) == {"idempotency_key", "country", "amount"}


def test_too_many_metadata_entries_rejected() -> None:
    metadata = {f"k{i}": "v" for i in range(51)}

    with pytest.raises(ValidationError) as caught:
        validate_create_payment(request(metadata=metadata))

    assert violated_fields(caught.value) == {"metadata"}


def test_fingerprint_ignores_amount_notation() -> None:
    first = validate_create_payment(request(amount="12.5"))
    second = validate_create_payment(request(amount="12.50"))

    assert first.fingerprint() == second.fingerprint()


def test_fingerprint_ignores_idempotency_key() -> None:
    first = validate_create_payment(request(idempotency_key="a"))
    second = validate_create_payment(request(idempotency_key="b"))

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": "12.51"},
        {"currency": "USD"},
        {"country": "FR"},
        {"payment_method_type": "fr_visa_card"},
        {"customer_id": "cus_2"},
        {"description": "other"},
        {"metadata": {"order": "43"}},
    ],
)
def test_fingerprint_changes_with_request(changes: dict[str, object]) -> None:
    base = validate_create_payment(request())
    changed = validate_create_payment(request(**changes))

    assert base.fingerprint() != changed.fingerprint()


def test_nul_in_metadata_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_create_payment(request(metadata={"order": "4\x002"}))

    assert violated_fields(caught.value) == {"metadata['order']"}
