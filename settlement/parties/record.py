"""What a party is (SPEC §10), checked field by field: `PartyRecord`.

Every party event carries the whole record as it stands after the event, so a
reader (a projection, a payout run's snapshot) never merges partial updates.
Messages never quote a value: names, addresses and accounts are personal data.

Checks, in this order (a `party.updated` checks only the fields it carries,
then the registration number against the kind the party has after it):

- `kind`: not "individual" / "corporation" → `party_kind_unknown`;
- `name`: not a non-blank string of at most 200 characters → `invalid_field`;
- `name_kana`: blank, over 200 characters, or not kana, A–Z, 0–9, space and
  `().-/` → `name_kana_format`;
- `address`: not null or a string of at most 500 characters → `invalid_field`;
- `invoice_registration_number`: not null or `T` + 13 digits →
  `invalid_registration_number`; a corporation's check digit →
  `registration_check_digit`;
- `bank_account`: not null or an account of `banking.accounts` → its codes
  (`bank_account_format`, `bank_code_format`, `branch_code_format`,
  `account_type_unknown`, `account_number_format`, `holder_kana_format`,
  `bank_name_kana_format`);
- `kyc_verified`: not true / false → `invalid_field`;
- `transfer_fee_bearer`: not "platform" / "payee" → `transfer_fee_bearer_unknown`;
- an update carrying none of these → `party_update_empty`.

A holder name without a Zengin form is accepted: the payout is held
(`name_not_representable`), never refused here (SPEC §11).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from settlement.banking.accounts import BankAccount, parse_bank_account
from settlement.banking.kana import NameNotRepresentable, to_zengin
from settlement.banking.registration import PARTY_KINDS, PartyKind, check_registration_number
from settlement.core.errors import InvalidInput

FeeBearer = Literal["platform", "payee"]
FEE_BEARERS: tuple[FeeBearer, ...] = ("platform", "payee")
NAME_CHARS_MAX = 200
ADDRESS_CHARS_MAX = 500
# Every field a party event may carry besides `party_id`, in the order checked.
FIELDS = ("kind", "name", "name_kana", "address", "invoice_registration_number",
          "bank_account", "kyc_verified", "transfer_fee_bearer")
REQUIRED = ("kind", "name", "name_kana")
# Kana long enough for any name: only the check matters here, not the cut.
_KANA_CHECK_BYTES = 10 * NAME_CHARS_MAX


@dataclass(frozen=True)
class PartyRecord:
    kind: PartyKind
    name: str
    name_kana: str
    address: str | None = None
    invoice_registration_number: str | None = None
    bank_account: BankAccount | None = None
    kyc_verified: bool = False
    transfer_fee_bearer: FeeBearer = "platform"
    # Set while a returned transfer holds the party (SPEC §11): the reason and
    # the payout returned; a `party.updated` with a bank account clears them.
    hold: str | None = None
    returned_payout_id: str | None = None

    def __repr__(self) -> str:
        # Keeps names, addresses and the account out of logs and tracebacks.
        return f"PartyRecord({self.kind}, kyc={self.kyc_verified}, {self.bank_account!r})"


def _kind(value: object) -> PartyKind:
    if not isinstance(value, str) or value not in PARTY_KINDS:
        raise InvalidInput(f"kind must be one of {PARTY_KINDS}", "party_kind_unknown")
    return value


def _text(name: str, value: object, chars_max: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > chars_max:
        raise InvalidInput(f"{name} must be a non-blank string of at most {chars_max} "
                           "characters", "invalid_field")
    return value


def _name_kana(value: object) -> str:
    text = value if isinstance(value, str) else ""
    try:
        if text.strip() and len(text) <= NAME_CHARS_MAX:
            to_zengin(text, _KANA_CHECK_BYTES)
            return text
    except NameNotRepresentable:
        pass
    raise InvalidInput(f"name_kana must be kana, A-Z, 0-9 or ' ().-/', at most "
                       f"{NAME_CHARS_MAX} characters", "name_kana_format")


def _address(value: object) -> str | None:
    return None if value is None else _text("address", value, ADDRESS_CHARS_MAX)


def _bank_account(value: object) -> BankAccount | None:
    return None if value is None else parse_bank_account(value)


def _kyc(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("kyc_verified must be true or false", "invalid_field")
    return value


def _bearer(value: object) -> FeeBearer:
    if not isinstance(value, str) or value not in FEE_BEARERS:
        raise InvalidInput(f"transfer_fee_bearer must be one of {FEE_BEARERS}",
                           "transfer_fee_bearer_unknown")
    return value


_PARSERS: dict[str, Any] = {
    "kind": _kind, "name": lambda v: _text("name", v, NAME_CHARS_MAX),
    "name_kana": _name_kana, "address": _address,
    "bank_account": _bank_account, "kyc_verified": _kyc, "transfer_fee_bearer": _bearer,
}


def _parsed(data: Mapping[str, Any], kind: PartyKind | None) -> dict[str, Any]:
    """The fields `data` carries, parsed in the documented order; the registration
    number against the kind the party has after them (`kind`: before)."""
    parsed: dict[str, Any] = {}
    for name in FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "invoice_registration_number":
            after: Any = parsed.get("kind", kind)  # checked by `check_registration_number`
            parsed[name] = None if value is None else check_registration_number(value, after)
        else:
            parsed[name] = _PARSERS[name](value)
    return parsed


def registered(data: Mapping[str, Any]) -> PartyRecord:
    """The record of a `party.registered` event's `data`."""
    for name in REQUIRED:
        if name not in data:
            raise InvalidInput(f"missing field {name}", "missing_field")
    return PartyRecord(**_parsed(data, None))


def updated(record: PartyRecord, data: Mapping[str, Any]) -> tuple[PartyRecord, list[str]]:
    """`record` after a `party.updated` event's `data`, and the names of the fields
    it carried. A new bank account clears a returned transfer's hold."""
    changes = _parsed(data, record.kind)
    if not changes:
        raise InvalidInput(f"an update carries at least one of {FIELDS}", "party_update_empty")
    number = record.invoice_registration_number
    if "kind" in changes and "invoice_registration_number" not in changes and number:
        check_registration_number(number, changes["kind"])  # the kept number, the new kind
    if "bank_account" in changes:
        changes.update(hold=None, returned_payout_id=None)
    return dataclasses.replace(record, **changes), [name for name in FIELDS if name in data]
