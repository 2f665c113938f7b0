from __future__ import annotations

from decimal import Decimal

import pytest

from hub import money


@pytest.mark.parametrize(
    ("code", "exponent"), [("EUR", 2), ("JPY", 0), ("BHD", 3), ("CLF", 4)]
)
def test_currency_exponent_follows_iso_4217(code: str, exponent: int) -> None:
    assert money.currency_exponent(code) == exponent


@pytest.mark.parametrize("code", ["eur", "EURO", "", "ZZZ", "XAU"])
def test_currency_exponent_rejects_unusable_code(code: str) -> None:
    with pytest.raises(money.AmountError):
        money.currency_exponent(code)


@pytest.mark.parametrize(
    ("amount", "exponent", "minor"),
    [
        ("12.50", 2, 1250),
        ("12.5", 2, 1250),
        ("12", 2, 1200),
        ("1500", 0, 1500),
        ("12.500", 2, 1250),
        ("7.0", 0, 7),
    ],
)
def test_to_minor_units_is_exact(amount: str, exponent: int, minor: int) -> None:
    assert money.to_minor_units(amount, exponent) == minor


@pytest.mark.parametrize(
    "amount", ["0", "0.00", "-5", "abc", "1e3", " 1", "1,5", "01.5", ".5", "5.", "+5"]
)
def test_to_minor_units_rejects_invalid_amount(amount: str) -> None:
    with pytest.raises(money.AmountError):
        money.to_minor_units(amount, 2)


def test_to_minor_units_rejects_extra_decimals() -> None:
    with pytest.raises(money.AmountError, match="allows 0"):
        money.to_minor_units("1.5", 0)


def test_to_minor_units_rejects_overflow() -> None:
    with pytest.raises(money.AmountError, match="too large"):
        money.to_minor_units("9" * 30, 2)


def test_minor_units_round_trip_without_float() -> None:
    value = money.to_decimal(1234567890123456789, 2)

    assert value == Decimal("12345678901234567.89")
    assert money.format_amount(1234567890123456789, 2) == "12345678901234567.89"
