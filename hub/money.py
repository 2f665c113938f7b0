"""Exact amounts: decimal strings in, integer minor units stored.

Amounts never pass through a float. The number of decimals a currency
allows is its ISO 4217 minor unit, read from the ``iso4217`` package.
"""

from __future__ import annotations

import re
from decimal import Decimal

import iso4217

# Plain decimal notation only: no sign, exponent, spaces or separators.
AMOUNT_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")

# The largest amount in minor units that fits a signed 64-bit column.
MAX_MINOR_UNITS = 2**63 - 1


class AmountError(ValueError):
    """An amount or currency that cannot be used; the message gives the reason."""


def currency_exponent(code: str) -> int:
    """Return the number of minor-unit decimals of an ISO 4217 currency."""
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise AmountError("must be a three-letter upper-case ISO 4217 code, e.g. EUR")
    try:
        exponent = iso4217.Currency(code).exponent
    except ValueError:
        raise AmountError(f"unknown ISO 4217 currency code {code!r}") from None
    if exponent is None:
        # Funds and metals such as XAU have no minor unit and no payments.
        raise AmountError(f"{code} is not a currency that payments can use")
    return int(exponent)


def to_minor_units(amount: str, exponent: int) -> int:
    """Convert a decimal string such as "12.50" to minor units (1250)."""
    if not AMOUNT_PATTERN.fullmatch(amount):
        raise AmountError(
            f"must be a positive decimal number such as '12.50', got {amount!r}"
        )
    _, _, decimals = amount.partition(".")
    # Zeros past the currency's decimals change nothing: "12.500" is 12.50.
    if len(decimals.rstrip("0")) > exponent:
        raise AmountError(
            f"has {len(decimals)} decimal places but the currency allows {exponent}"
        )
    minor = int(Decimal(amount).scaleb(exponent))
    if minor <= 0:
        raise AmountError("must be greater than zero")
    if minor > MAX_MINOR_UNITS:
        raise AmountError("is too large")
    return minor


def to_decimal(minor: int, exponent: int) -> Decimal:
    """Convert minor units back to an exact major-unit Decimal."""
    return Decimal(minor).scaleb(-exponent)


def format_amount(minor: int, exponent: int) -> str:
    """Render minor units as the canonical decimal string ("12.50")."""
    return f"{to_decimal(minor, exponent):.{exponent}f}"
