"""Money on the wire and in arithmetic (SPEC §3 and §5): decimal strings only,
the currency's decimals, floor rounding, exact wire form."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import moneyed
import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.core.errors import InvalidMoney
from settlement.core.money import Money, exponent, floor, money, parse_money, to_wire, zero


def wire(amount: Any, currency: Any = "JPY") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


# Wire input → the exact amount string it parses to (currency as given).
ACCEPTED = [
    (wire("100"), "100"),
    (wire("1"), "1"),
    (wire("007"), "7"),
    (wire("12.34", "USD"), "12.34"),
    (wire("12.3", "USD"), "12.3"),
    (wire("0.01", "USD"), "0.01"),
    (wire("1.234", "KWD"), "1.234"),
    (wire("0.001", "KWD"), "0.001"),
    (wire("1000000000000"), "1000000000000"),  # exactly 10^12 is allowed
    (wire("999999999999.99", "USD"), "999999999999.99"),
]


@pytest.mark.parametrize(("value", "amount"), ACCEPTED)
def test_accepted_wire_amounts(value: dict[str, str], amount: str) -> None:
    parsed = parse_money(value)
    assert parsed == Money(Decimal(amount), value["currency"])
    assert parsed.amount.as_tuple() == Decimal(value["amount"]).as_tuple()


# Wire input → the stable rejection code.
REJECTED = [
    # Decimals beyond the currency's minor unit, even trailing zeros.
    (wire("100.5"), "amount_too_precise"),
    (wire("100.0"), "amount_too_precise"),
    (wire("12.345", "USD"), "amount_too_precise"),
    (wire("1.1234567", "USD"), "amount_too_precise"),
    (wire("1.2345", "KWD"), "amount_too_precise"),
    # Zero and negative.
    (wire("0"), "amount_not_positive"),
    (wire("0.00", "USD"), "amount_not_positive"),
    (wire("-5"), "amount_not_positive"),
    (wire("-0"), "amount_not_positive"),
    (wire("-1e3"), "amount_not_positive"),
    # JSON numbers and other non-strings.
    (wire(12.5), "amount_float"),
    (wire(100.0), "amount_float"),
    (wire(Decimal("12.5")), "amount_not_string"),
    (wire(12), "amount_not_string"),
    (wire(True), "amount_not_string"),
    (wire(None), "amount_not_string"),
    ({"currency": "JPY"}, "amount_not_string"),
    # Not numbers.
    (wire("NaN"), "amount_nan"),
    (wire("nan"), "amount_nan"),
    (wire("-NaN"), "amount_nan"),
    (wire("sNaN"), "amount_nan"),
    (wire("Infinity"), "amount_nan"),
    (wire("inf"), "amount_nan"),
    (wire("+Infinity"), "amount_nan"),
    # Not plain decimal strings (each of these is a valid Python Decimal).
    (wire("1e3"), "amount_format"),
    (wire("1E3"), "amount_format"),
    (wire(" 12"), "amount_format"),
    (wire("12 "), "amount_format"),
    (wire("+12"), "amount_format"),
    (wire(""), "amount_format"),
    (wire("1."), "amount_format"),
    (wire(".5", "USD"), "amount_format"),
    (wire("1,000"), "amount_format"),
    (wire("1_000"), "amount_format"),
    (wire("１２"), "amount_format"),  # full-width digits
    (wire("1" * 33), "amount_format"),  # beyond the input length bound
    # Above 10^12 major units.
    (wire("1000000000001"), "amount_too_large"),
    (wire("10000000000000"), "amount_too_large"),
    (wire("1000000000000.01", "USD"), "amount_too_large"),
    # Currency.
    (wire("100", "XYZ"), "currency_unknown"),
    (wire("100", "jpy"), "currency_unknown"),
    (wire("100", "XXX"), "currency_unknown"),
    (wire("100", 392), "currency_unknown"),
    ({"amount": "100"}, "currency_unknown"),
    (wire(12.5, "XYZ"), "currency_unknown"),  # the currency is checked first
    # Not an object.
    ("100 JPY", "money_format"),
    (["100", "JPY"], "money_format"),
    (None, "money_format"),
    (100, "money_format"),
]


@pytest.mark.parametrize(("value", "code"), REJECTED)
def test_rejected_wire_amounts(value: object, code: str) -> None:
    with pytest.raises(InvalidMoney) as raised:
        parse_money(value)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("value", "amount"),
    [(wire("0"), "0"), (wire("0.00", "USD"), "0.00"), (wire("5"), "5")],
)
def test_zero_is_accepted_where_allowed(value: dict[str, str], amount: str) -> None:
    assert parse_money(value, allow_zero=True) == Money(Decimal(amount), value["currency"])


def test_negative_is_refused_even_where_zero_is_allowed() -> None:
    with pytest.raises(InvalidMoney) as raised:
        parse_money(wire("-1"), allow_zero=True)
    assert raised.value.code == "amount_not_positive"


@pytest.mark.parametrize("document", ['{"amount": 12.5, "currency": "JPY"}',
                                      '{"amount": 12, "currency": "JPY"}'])
def test_json_numbers_parsed_as_decimal_are_refused(document: str) -> None:
    # A consumer that parses floats as Decimal still must not accept JSON numbers.
    with pytest.raises(InvalidMoney) as raised:
        parse_money(json.loads(document, parse_float=Decimal))
    assert raised.value.code == "amount_not_string"


@pytest.mark.parametrize(("currency", "decimals"), [("JPY", 0), ("USD", 2), ("KWD", 3)])
def test_exponent_is_the_minor_unit(currency: str, decimals: int) -> None:
    assert exponent(currency) == decimals


def test_exponent_of_an_unknown_currency_is_refused() -> None:
    with pytest.raises(InvalidMoney) as raised:
        exponent("XYZ")
    assert raised.value.code == "currency_unknown"


# (value, currency) → floored amount string, always towards −∞, never half-up.
FLOORED = [
    ("100.9", "JPY", "100"),
    ("100.5", "JPY", "100"),
    ("5", "JPY", "5"),
    ("12", "USD", "12.00"),
    ("12.345", "USD", "12.34"),
    ("12.999", "USD", "12.99"),
    ("0.009", "USD", "0.00"),
    ("1.2345", "KWD", "1.234"),
    ("0.0019", "KWD", "0.001"),
    ("-0.5", "JPY", "-1"),  # floor, not truncation towards zero
]


@pytest.mark.parametrize(("value", "currency", "expected"), FLOORED)
def test_floor_rounds_down_to_the_minor_unit(value: str, currency: str, expected: str) -> None:
    floored = floor(Decimal(value), currency)
    assert floored.currency.code == currency
    assert str(floored.amount) == expected


# Direct construction from a computed Decimal → code.
MONEY_REJECTED = [
    (12.5, "JPY", "amount_float"),
    (12, "JPY", "amount_float"),
    ("12", "JPY", "amount_float"),
    (Decimal("NaN"), "JPY", "amount_nan"),
    (Decimal("Infinity"), "JPY", "amount_nan"),
    (Decimal("-1"), "JPY", "amount_not_positive"),
    (Decimal("0"), "JPY", "amount_not_positive"),
    (Decimal("100.5"), "JPY", "amount_too_precise"),
    (Decimal("0.001"), "USD", "amount_too_precise"),
    (Decimal(10**12 + 1), "JPY", "amount_too_large"),
    (Decimal("1"), "XYZ", "currency_unknown"),
]


@pytest.mark.parametrize(("amount", "currency", "code"), MONEY_REJECTED)
def test_money_refuses(amount: Any, currency: str, code: str) -> None:
    with pytest.raises(InvalidMoney) as raised:
        money(amount, currency)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("amount", "currency", "allow_zero"),
    [
        (Decimal("100"), "JPY", False),
        (Decimal("100.0"), "JPY", False),  # a whole yen written with a zero decimal
        (Decimal("12.34"), "USD", False),
        (Decimal("0"), "USD", True),
        (Decimal(10**12), "JPY", False),
    ],
)
def test_money_accepts(amount: Decimal, currency: str, allow_zero: bool) -> None:
    assert money(amount, currency, allow_zero) == Money(amount, currency)


def test_zero_is_a_zero_amount_in_the_currency() -> None:
    assert zero("USD") == Money(Decimal("0"), "USD")
    assert zero("USD").currency.code == "USD"


# Money → exact wire amount at the currency's precision.
WIRE = [
    (Money(Decimal("1234567.89"), "USD"), "1234567.89"),
    (Money(Decimal("1234567.125"), "KWD"), "1234567.125"),
    (Money(Decimal("1000000000000"), "JPY"), "1000000000000"),
    (Money(Decimal("999999999999.99"), "USD"), "999999999999.99"),
    (Money(Decimal("12.3"), "USD"), "12.30"),
    (Money(Decimal("1E+3"), "JPY"), "1000"),  # never an exponent on the wire
    (Money(Decimal("0"), "USD"), "0.00"),
]


@pytest.mark.parametrize(("amount", "expected"), WIRE)
def test_to_wire_is_exact(amount: Money, expected: str) -> None:
    assert to_wire(amount) == {"amount": expected, "currency": amount.currency.code}


@pytest.mark.parametrize("amount", [m for m, _ in WIRE if m.amount > 0])
def test_wire_form_parses_back_to_the_same_money(amount: Money) -> None:
    assert parse_money(to_wire(amount)) == amount


# Fast arithmetic: the same results as py-moneyed's -----------------------------------

amounts = st.decimals(min_value=-10**12, max_value=10**12, places=3, allow_nan=False,
                      allow_infinity=False)


@given(a=amounts, b=amounts, currency=st.sampled_from(["JPY", "USD", "KWD"]))
def test_arithmetic_agrees_with_py_moneyed(a: Decimal, b: Decimal, currency: str) -> None:
    ours, theirs = (Money(a, currency), Money(b, currency)), (
        moneyed.Money(a, currency), moneyed.Money(b, currency))
    for result, expected in ((ours[0] + ours[1], theirs[0] + theirs[1]),
                             (ours[0] - ours[1], theirs[0] - theirs[1])):
        assert type(result) is Money
        assert result == expected
        assert result.amount.as_tuple() == expected.amount.as_tuple()


def test_arithmetic_refuses_mixed_currencies() -> None:
    with pytest.raises(TypeError):
        Money(Decimal(1), "JPY") + Money(Decimal(1), "USD")
    with pytest.raises(TypeError):
        Money(Decimal(1), "JPY") - Money(Decimal(1), "USD")


def test_arithmetic_with_library_money_and_zero_still_works() -> None:
    ours, theirs = Money(Decimal(5), "JPY"), moneyed.Money(Decimal(3), "JPY")
    assert ours + theirs == theirs + ours == Money(Decimal(8), "JPY")
    assert ours - theirs == Money(Decimal(2), "JPY")
    assert theirs - ours == Money(Decimal(-2), "JPY")
    assert sum([ours, ours]) == Money(Decimal(10), "JPY")  # sum() starts from 0


def test_zero_and_floor_are_cached_per_currency_yet_fresh_in_value() -> None:
    assert zero("JPY") is zero("JPY")
    assert floor(Decimal("1.239"), "USD") == Money(Decimal("1.23"), "USD")
    assert floor(Decimal("7.9"), "JPY") == Money(Decimal(7), "JPY")
