"""The qualified-invoice registration number (適格請求書発行事業者登録番号), SPEC §10.

The number is `T` followed by 13 ASCII digits. For a corporation the 13 digits
are its 法人番号, whose first digit is the check digit of the other twelve
(NTA rule): 9 − (Σ Pₙ·Qₙ mod 9), Pₙ the n-th of the twelve digits counted from
the right, Qₙ 1 for odd n and 2 for even n. `T7000012050002` is valid. For an
individual the NTA publishes no check rule, so only the form is checked.
Nothing is normalised (no full-width digits, no lower-case `t`): anything
else is refused.

Checks, in this order, and their codes:

| check | code |
|---|---|
| `kind` is "individual" or "corporation" | `party_kind_unknown` |
| `T` + 13 ASCII digits | `invalid_registration_number` |
| a corporation's check digit | `registration_check_digit` |
"""

from __future__ import annotations

import re
from typing import Literal

from settlement.core.errors import InvalidInput

PartyKind = Literal["individual", "corporation"]
PARTY_KINDS: tuple[PartyKind, ...] = ("individual", "corporation")

# `[0-9]` and not `\d`, which also matches full-width and other Unicode digits.
_FORM = re.compile(r"T[0-9]{13}")


class InvalidRegistrationNumber(InvalidInput):
    """A registration number of the wrong form, or a corporation's with a wrong check digit."""

    code = "invalid_registration_number"


def corporate_check_digit(twelve_digits: str) -> int:
    """The 法人番号 check digit of the twelve digits that follow it."""
    assert len(twelve_digits) == 12 and twelve_digits.isascii() and twelve_digits.isdigit()
    total = sum(
        int(digit) * (1 if n % 2 == 1 else 2)
        for n, digit in enumerate(reversed(twelve_digits), start=1)
    )
    return 9 - total % 9


def check_registration_number(number: object, kind: PartyKind) -> str:
    """`number` if it is a valid registration number for a party of `kind`."""
    if kind not in PARTY_KINDS:
        raise InvalidInput(f"party kind {kind!r} is not one of {PARTY_KINDS}", "party_kind_unknown")
    if not isinstance(number, str) or not _FORM.fullmatch(number):
        shown = number[:20] if isinstance(number, str) else type(number).__name__
        raise InvalidRegistrationNumber(f"{shown!r} is not T followed by 13 digits")
    if kind == "corporation":
        expected = corporate_check_digit(number[2:])
        if int(number[1]) != expected:
            raise InvalidRegistrationNumber(
                f"{number}: check digit {number[1]}, expected {expected}",
                "registration_check_digit",
            )
    return number
