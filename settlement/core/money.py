"""Money: py-moneyed `Money` with `Decimal` amounts only, floored to minor units."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import moneyed
from moneyed import CURRENCIES, Currency, get_currency

from settlement.core.errors import InvalidMoney

AMOUNT_MAJOR_MAX = Decimal(10) ** 12
# The pattern only bounds the input length; the value limits (10^12, the
# currency's decimals) are checked after it, so "10000000000000" is
# `amount_too_large` and "1.1234567" `amount_too_precise`, not `amount_format`.
_DECIMAL_STRING = re.compile(r"^[0-9]{1,32}(\.[0-9]{1,32})?$")

__all__ = ["Money", "money", "parse_money", "floor", "zero", "exponent", "currency_of"]


class Money(moneyed.Money):
    """py-moneyed's `Money`, with `+` and `-` of two amounts in the same currency
    computed directly. Fees and bookkeeping do little else, and the library's
    generic path (a comparison with 0, a negated copy for `-`, the constructor's
    conversions) made up a fifth of deciding a command (profiled). Anything
    else, mixed currencies included, goes the library's way.
    """

    def __add__(self, other: object) -> Money:
        if type(other) is Money and other.currency is self.currency:
            return _new(self.amount + other.amount, self.currency)
        return super().__add__(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Money:
        if type(other) is Money and other.currency is self.currency:
            return _new(self.amount - other.amount, self.currency)
        return super().__sub__(other)


def _new(amount: Decimal, currency: Currency) -> Money:
    """`Money(amount, currency)` for a Decimal and a `Currency` object, without the
    constructor's conversions (a `Money` is a plain object with these two attributes)."""
    result = _object_new(Money)
    result.__dict__.update(amount=amount, currency=currency)
    return result


_object_new = object.__new__


def currency_of(code: object) -> Currency:
    """The ISO 4217 currency named `code`, or `currency_unknown`."""
    if not isinstance(code, str) or code not in CURRENCIES or code == "XXX":
        raise InvalidMoney(f"unknown currency {code!r}", "currency_unknown")
    return get_currency(code)


# The three helpers below are cached per currency (a few hundred at most: an
# unknown code raises, and exceptions are not cached); they ran for every fee.


@functools.cache
def exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    sub_unit = currency_of(currency).sub_unit
    return len(str(sub_unit)) - 1


@functools.cache
def _currency(code: str) -> Currency:
    return get_currency(str(code).upper())


@functools.cache
def zero(currency: str) -> Money:
    """Zero in `currency`: one shared instance, as `Money` is never mutated."""
    return Money(Decimal(0), currency)


@functools.cache
def minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount (JPY 1, USD 0.01)."""
    return Decimal(1).scaleb(-exponent(currency))


def floor(value: Decimal, currency: str) -> Money:
    """Round down to the currency's minor unit: the only rounding the service does."""
    return _new(value.quantize(minor_unit(currency), rounding=ROUND_FLOOR), _currency(currency))


def money(amount: Decimal, currency: str, allow_zero: bool = False) -> Money:
    """A validated amount: a finite Decimal, positive (or zero where allowed),
    at most 10^12 major units, within the currency's decimals."""
    currency_of(currency)
    if isinstance(amount, float) or not isinstance(amount, Decimal):
        raise InvalidMoney(f"amount must be a Decimal, got {type(amount).__name__}", "amount_float")
    if not amount.is_finite():
        raise InvalidMoney(f"amount {amount} is not a finite number", "amount_nan")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidMoney(f"amount {amount} must be positive", "amount_not_positive")
    if amount > AMOUNT_MAJOR_MAX:
        raise InvalidMoney(f"amount {amount} exceeds 10^12", "amount_too_large")
    decimals = -int(amount.as_tuple().exponent)
    if decimals > exponent(currency) and amount != amount.quantize(minor_unit(currency)):
        raise InvalidMoney(
            f"{currency} has {exponent(currency)} decimals, {amount} has more",
            "amount_too_precise",
        )
    return Money(amount, currency)


def parse_money(value: object, allow_zero: bool = False) -> Money:
    """Parse the wire form `{"amount": "<decimal string>", "currency": "<ISO 4217>"}`.

    Only decimal strings are accepted: JSON numbers (floats or Decimals from
    `parse_float=Decimal`), exponents, NaN and Infinity are refused, so no
    binary float ever reaches an amount.
    """
    if not isinstance(value, Mapping):
        raise InvalidMoney("money must be an object with amount and currency", "money_format")
    raw: Any = value.get("amount")
    currency = value.get("currency")
    currency_of(currency)
    if isinstance(raw, float):
        raise InvalidMoney("amount must be a decimal string, got a float", "amount_float")
    if not isinstance(raw, str):
        raise InvalidMoney("amount must be a decimal string", "amount_not_string")
    if raw.lower().lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
        raise InvalidMoney(f"amount {raw!r} is not a number", "amount_nan")
    if raw.startswith("-"):
        raise InvalidMoney(f"amount {raw} must be positive", "amount_not_positive")
    if not _DECIMAL_STRING.fullmatch(raw):  # `$` alone admits a trailing newline
        raise InvalidMoney(f"amount {raw!r} is not a plain decimal string", "amount_format")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidMoney(f"amount {raw!r} is not a decimal", "amount_format") from exc
    decimals = len(raw.partition(".")[2])
    if decimals > exponent(str(currency)):
        raise InvalidMoney(
            f"{currency} has {exponent(str(currency))} decimals, {raw} has {decimals}",
            "amount_too_precise",
        )
    return money(amount, str(currency), allow_zero)


def to_wire(amount: Money) -> dict[str, str]:
    """The wire form, exact: never `str(Money)`, which rounds for display."""
    return {"amount": format_amount(amount), "currency": amount.currency.code}


def format_amount(amount: Money) -> str:
    """Exact decimal string of an amount at its currency's precision."""
    quantum = Decimal(1).scaleb(-exponent(amount.currency.code))
    return str(amount.amount.quantize(quantum))
