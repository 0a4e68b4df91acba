"""Pure pieces of the finance API: exact amount strings, instants, CSV cells."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from settlement.api.params import instant, pick_currency
from settlement.api.render import ApiError, amount, iso, to_csv


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("11000"), "11000"), (Decimal("105.00"), "105.00"), (Decimal("-0"), "0"),
    (Decimal("-0.00"), "0.00"), (Decimal("1E+3"), "1000"), (Decimal("-12.5"), "-12.5"),
    (Decimal("1000000000000.001"), "1000000000000.001"), (0, "0")])
def test_amounts_are_exact_plain_decimal_strings(value: Decimal, text: str) -> None:
    assert amount(value) == text


def test_instants_need_an_offset_and_come_back_in_utc() -> None:
    assert instant("as_of", "2026-11-26T18:02:30+09:00") == datetime(2026, 11, 26, 9, 2, 30,
                                                                     tzinfo=UTC)
    assert iso(instant("as_of", "2026-11-26T09:00:00Z")) == "2026-11-26T09:00:00+00:00"
    assert instant("as_of", None) is None
    for bad in ("2026-11-26T09:00:00", "yesterday", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(ApiError) as raised:
            instant("as_of", bad)
        assert (raised.value.status, raised.value.code, raised.value.parameter) == (
            400, "invalid_parameter", "as_of")


def test_currency_is_chosen_only_when_unambiguous() -> None:
    assert pick_currency("USD", lambda: ["JPY", "USD"]) == "USD"
    assert pick_currency(None, lambda: ["JPY"]) == "JPY"
    assert pick_currency(None, lambda: []) is None
    with pytest.raises(ApiError) as raised:
        pick_currency(None, lambda: ["JPY", "USD"])
    assert raised.value.code == "currency_required"


def test_csv_cells() -> None:
    rows = [{"a": None, "b": True, "c": {"x": "1"}, "d": "1.50"},
            {"a": "q,\"r\"", "b": False, "c": [], "d": "2"}]
    assert to_csv(["a", "b", "c", "d"], rows) == (
        'a,b,c,d\n,true,"{""x"":""1""}",1.50\n"q,""r""",false,[],2\n')
    assert to_csv(["a"], []) == "a\n"
