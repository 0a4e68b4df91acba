"""A party's Japanese bank account (SPEC §10 `bank_account`).

`{bank_code: 4 digits, branch_code: 3 digits, account_type: "ordinary" /
"current" / "savings", account_number: 7 digits, holder_kana, bank_name_kana?,
branch_name_kana?}`. Digits are ASCII digits in a string (leading zeros are
part of the code). Account types are written in a Zengin file as 預金種目
1 (普通), 2 (当座) and 4 (貯蓄).

`holder_kana` is kept as given and is not converted here: SPEC §11 holds a
payout whose holder name has no Zengin form (`name_not_representable`) rather
than refusing the account, so the payout run calls `zengin_holder_name()`.
The optional bank and branch names only label the file, so one without a
Zengin form is refused here.

Checks, in this order (every code is an `InvalidBankAccount`):

| check | code |
|---|---|
| an object with only the fields above | `bank_account_format` |
| `bank_code`: 4 digits | `bank_code_format` |
| `branch_code`: 3 digits | `branch_code_format` |
| `account_type`: ordinary / current / savings | `account_type_unknown` |
| `account_number`: 7 digits | `account_number_format` |
| `holder_kana`: a non-blank string of at most 100 characters | `holder_kana_format` |
| `bank_name_kana`, `branch_name_kana`: absent, null or ≤ 100 kana | `bank_name_kana_format` |

Messages never quote the values: account numbers and names are personal data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from settlement.banking.kana import HOLDER_NAME_BYTES_MAX, NameNotRepresentable, to_zengin
from settlement.core.errors import InvalidInput

AccountType = Literal["ordinary", "current", "savings"]
ACCOUNT_TYPE_CODES: dict[AccountType, str] = {"ordinary": "1", "current": "2", "savings": "4"}
# The longest holder, bank or branch name accepted as given (before conversion).
KANA_NAME_CHARS_MAX = 100
# The width of the bank and branch name fields in a Zengin record.
BANK_NAME_BYTES_MAX = 15

_FIELDS = frozenset({
    "bank_code", "branch_code", "account_type", "account_number",
    "holder_kana", "bank_name_kana", "branch_name_kana",
})
_BANK_CODE = re.compile(r"[0-9]{4}")
_BRANCH_CODE = re.compile(r"[0-9]{3}")
_ACCOUNT_NUMBER = re.compile(r"[0-9]{7}")


class InvalidBankAccount(InvalidInput):
    """A bank account that breaks a rule of SPEC §10; `code` says which."""

    code = "bank_account_format"


@dataclass(frozen=True)
class BankAccount:
    bank_code: str
    branch_code: str
    account_type: AccountType
    account_number: str
    holder_kana: str
    bank_name_kana: str | None = None
    branch_name_kana: str | None = None

    def masked(self) -> str:
        """The account number as the API and console show it: `****567`."""
        return "****" + self.account_number[-3:]

    def public(self) -> dict[str, str | None]:
        """The account as it may leave the service outside a bank file: every field,
        the number masked."""
        return {"bank_code": self.bank_code, "branch_code": self.branch_code,
                "account_type": self.account_type, "account_number": self.masked(),
                "holder_kana": self.holder_kana, "bank_name_kana": self.bank_name_kana,
                "branch_name_kana": self.branch_name_kana}

    def zengin_holder_name(self) -> str:
        """受取人名: the holder's name in the Zengin set, cut at 30 bytes;
        `NameNotRepresentable` (`name_not_representable`) if it has none."""
        return to_zengin(self.holder_kana, HOLDER_NAME_BYTES_MAX)

    def zengin_bank_names(self) -> tuple[str, str]:
        """被仕向銀行名 and 被仕向支店名 in the Zengin set, cut at 15 bytes; blank if absent."""
        return (_zengin_or_blank(self.bank_name_kana), _zengin_or_blank(self.branch_name_kana))

    def __repr__(self) -> str:
        # Keeps the whole number and the name out of logs and tracebacks.
        return f"BankAccount({self.bank_code}-{self.branch_code} {self.masked()})"


def _zengin_or_blank(name: str | None) -> str:
    # Names are checked when the account is parsed, so this cannot refuse one.
    return "" if name is None else to_zengin(name, BANK_NAME_BYTES_MAX)


def _matching(data: Mapping[str, object], field: str, pattern: re.Pattern[str], code: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidBankAccount(f"{field} must be a string of {pattern.pattern}", code)
    return value


def _bank_name(data: Mapping[str, object], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    try:
        if isinstance(value, str) and len(value) <= KANA_NAME_CHARS_MAX:
            to_zengin(value, BANK_NAME_BYTES_MAX)
            return value
    except NameNotRepresentable:
        pass
    raise InvalidBankAccount(f"{field} has no Zengin form", "bank_name_kana_format")


def parse_bank_account(data: object) -> BankAccount:
    """The `BankAccount` that `data` (the event's `bank_account` object) describes."""
    if not isinstance(data, Mapping) or not _FIELDS.issuperset(data):
        raise InvalidBankAccount(f"bank_account must be an object with fields {sorted(_FIELDS)}")
    fields = cast(Mapping[str, object], data)
    bank_code = _matching(fields, "bank_code", _BANK_CODE, "bank_code_format")
    branch_code = _matching(fields, "branch_code", _BRANCH_CODE, "branch_code_format")
    account_type = fields.get("account_type")
    # `isinstance` first: `in` on a dict raises for an unhashable value (a list).
    if not isinstance(account_type, str) or account_type not in ACCOUNT_TYPE_CODES:
        raise InvalidBankAccount(
            f"account_type must be one of {sorted(ACCOUNT_TYPE_CODES)}", "account_type_unknown"
        )
    account_number = _matching(fields, "account_number", _ACCOUNT_NUMBER, "account_number_format")
    holder_kana = fields.get("holder_kana")
    if (not isinstance(holder_kana, str) or not holder_kana.strip()
            or len(holder_kana) > KANA_NAME_CHARS_MAX):
        raise InvalidBankAccount(
            f"holder_kana must be a non-blank string of at most {KANA_NAME_CHARS_MAX} characters",
            "holder_kana_format",
        )
    return BankAccount(
        bank_code=bank_code,
        branch_code=branch_code,
        account_type=account_type,
        account_number=account_number,
        holder_kana=holder_kana,
        bank_name_kana=_bank_name(fields, "bank_name_kana"),
        branch_name_kana=_bank_name(fields, "branch_name_kana"),
    )
