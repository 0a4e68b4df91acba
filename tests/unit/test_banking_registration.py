"""Invoice registration numbers (SPEC §10): `T` + 13 digits, and a corporation's
法人番号 check digit 9 − (Σ Pₙ·Qₙ mod 9)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.banking.registration import (
    InvalidRegistrationNumber,
    check_registration_number,
    corporate_check_digit,
)
from settlement.core.errors import InvalidInput

# Check digits worked by hand. 000012050002, from the right with weights
# 1,2,1,2…: 2·1 + 5·1 + 2·1 + 1·2 = 11; 11 mod 9 = 2; 9 − 2 = 7.
HAND_COMPUTED = [
    ("000012050002", 7),  # the SPEC's example, T7000012050002
    ("180301018771", 1),  # 1+14+7+16+1+0+1+0+3+0+8+2 = 53; 53 mod 9 = 8
    ("000012090001", 4),  # 1+9+2+2 = 14; 14 mod 9 = 5
    ("234567890123", 9),  # 3+4+1+0+9+16+7+12+5+8+3+4 = 72; 72 mod 9 = 0
    ("000000000000", 9),  # the sum is 0, so the check digit is 9, never 0
]


@pytest.mark.parametrize(("twelve", "check"), HAND_COMPUTED)
def test_check_digits(twelve: str, check: int) -> None:
    assert corporate_check_digit(twelve) == check
    number = f"T{check}{twelve}"
    assert check_registration_number(number, "corporation") == number


def test_the_specs_example() -> None:
    assert check_registration_number("T7000012050002", "corporation") == "T7000012050002"
    with pytest.raises(InvalidRegistrationNumber) as refused:
        check_registration_number("T7000012050003", "corporation")
    assert refused.value.code == "registration_check_digit"
    assert isinstance(refused.value, InvalidInput)


def test_individuals_are_checked_for_form_only() -> None:
    # T1234567890123 fails the corporate check (its check digit would be 9).
    assert check_registration_number("T1234567890123", "individual") == "T1234567890123"
    with pytest.raises(InvalidRegistrationNumber) as refused:
        check_registration_number("T1234567890123", "corporation")
    assert refused.value.code == "registration_check_digit"


MALFORMED: list[Any] = [
    "",
    "T",
    "7000012050002",            # no T
    "t7000012050002",           # lower-case t
    "T700001205000",            # 12 digits
    "T70000120500021",          # 14 digits
    "Ｔ7000012050002",          # full-width T
    "T７000012050002",          # a full-width digit
    "T٧000012050002",           # an Arabic-Indic seven: a Unicode digit, not 0-9
    "T7000012050002\n",
    " T7000012050002",
    "T7000-01205-0002",
    7000012050002,
    None,
]


@pytest.mark.parametrize("kind", ["individual", "corporation"])
@pytest.mark.parametrize("number", MALFORMED)
def test_malformed_numbers(number: Any, kind: Any) -> None:
    with pytest.raises(InvalidRegistrationNumber) as refused:
        check_registration_number(number, kind)
    assert refused.value.code == "invalid_registration_number"


def test_an_unknown_party_kind_is_refused_first() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_registration_number("not even a number", "sole_trader")  # type: ignore[arg-type]
    assert refused.value.code == "party_kind_unknown"


twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


@given(twelve_digits)
def test_exactly_one_leading_digit_is_valid(twelve: str) -> None:
    valid = [d for d in "0123456789" if _valid(f"T{d}{twelve}")]
    assert valid == [str(corporate_check_digit(twelve))]
    assert valid != ["0"]


@given(twelve_digits, st.integers(0, 11), st.integers(1, 8))
def test_changing_one_digit_is_caught_unless_it_swaps_0_and_9(
    twelve: str, position: int, shift: int
) -> None:
    # A digit moved by δ changes the sum by δ or 2δ, a multiple of 9 only for
    # δ = ±9 (0 ↔ 9): the one single-digit change the check cannot see.
    number = f"T{corporate_check_digit(twelve)}{twelve}"
    changed = list(number)
    changed[2 + position] = str((int(changed[2 + position]) + shift) % 10)
    if {number[2 + position], changed[2 + position]} == {"0", "9"}:
        return
    assert not _valid("".join(changed))


def _valid(number: str) -> bool:
    try:
        check_registration_number(number, "corporation")
    except InvalidRegistrationNumber:
        return False
    return True
