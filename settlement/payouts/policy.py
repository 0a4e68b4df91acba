"""What a payout run applies besides the ledger (SPEC §11), from configuration:
the minimum payout per currency, the requester (依頼人) of the Zengin file with
the platform's own account, and the bank's transfer fees for payees who bear
them. Read from a TOML file (`SETTLEMENT_PAYOUT_CONFIG`, a sample ships as
`payouts.toml`); a run records the policy it started with, so finishing it
later decides by the same rules whatever the file says by then.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from settlement.banking.accounts import ACCOUNT_TYPE_CODES
from settlement.banking.kana import NameNotRepresentable, to_zengin
from settlement.banking.transfers import Requester
from settlement.core.errors import ConfigError
from settlement.payouts.transfer_fees import TransferFees, _decimal, parse_transfer_fees

DEFAULT_PAYOUT_CONFIG = Path(__file__).with_name("payouts.toml")
DEFAULT_MINIMUMS = {"JPY": Decimal(1000)}
REQUESTER_NAME_BYTES_MAX = 40
BANK_NAME_BYTES_MAX = 15
_REQUESTER_DIGITS = {"code": (1, 10), "bank_code": (4, 4), "branch_code": (3, 3),
                     "account_number": (7, 7)}


@dataclass(frozen=True)
class PayoutPolicy:
    minimums: Mapping[str, Decimal]  # per currency; a currency not named has none
    requester: Requester | None  # None: no Zengin file can be written (JPY runs refuse)
    fees: TransferFees

    def minimum(self, currency: str) -> Decimal:
        return self.minimums.get(currency, Decimal(0))

    def to_json(self) -> dict[str, Any]:
        requester = None if self.requester is None else dict(vars(self.requester))
        return {"minimums": {c: str(m) for c, m in sorted(self.minimums.items())},
                "requester": requester, "transfer_fees": self.fees.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PayoutPolicy:
        return parse_policy({**data, "requester": data.get("requester")}, zengin_names=False)


def _digits(data: Mapping[str, Any], name: str) -> str:
    low, high = _REQUESTER_DIGITS[name]
    value = data.get(name)
    if not (isinstance(value, str) and value.isascii() and value.isdigit()
            and low <= len(value) <= high):
        raise ConfigError(f"requester.{name} must be {low}-{high} digits")
    return value


def _kana(data: Mapping[str, Any], name: str, bytes_max: int, convert: bool) -> str:
    value = data.get(name, "")
    try:
        if isinstance(value, str) and (not convert or not value.strip()):
            converted = value
        elif isinstance(value, str):
            converted = to_zengin(value, 10 * bytes_max)
        else:
            raise NameNotRepresentable("not a string")
    except NameNotRepresentable as exc:
        raise ConfigError(f"requester.{name} has no Zengin form") from exc
    if len(converted) > bytes_max:
        raise ConfigError(f"requester.{name} is longer than {bytes_max} bytes in Zengin form")
    return converted


def parse_requester(data: Mapping[str, Any], convert: bool = True) -> Requester:
    account_type = data.get("account_type")
    if not isinstance(account_type, str) or account_type not in ACCOUNT_TYPE_CODES:
        raise ConfigError(f"requester.account_type must be one of {sorted(ACCOUNT_TYPE_CODES)}")
    name = _kana(data, "name_kana", REQUESTER_NAME_BYTES_MAX, convert)
    if not name.strip():
        raise ConfigError("requester.name_kana is required")
    return Requester(
        code=_digits(data, "code"), name_kana=name, bank_code=_digits(data, "bank_code"),
        bank_name_kana=_kana(data, "bank_name_kana", BANK_NAME_BYTES_MAX, convert),
        branch_code=_digits(data, "branch_code"),
        branch_name_kana=_kana(data, "branch_name_kana", BANK_NAME_BYTES_MAX, convert),
        account_type=account_type,
        account_number=_digits(data, "account_number"))


def parse_policy(data: Mapping[str, Any], zengin_names: bool = True) -> PayoutPolicy:
    minimums = data.get("minimums", {c: str(m) for c, m in DEFAULT_MINIMUMS.items()})
    if not isinstance(minimums, Mapping):
        raise ConfigError("minimums must be a table of currency = amount")
    requester = data.get("requester")
    fees = data.get("transfer_fees")
    if not isinstance(fees, Mapping):
        raise ConfigError("transfer_fees must be a table")
    return PayoutPolicy(
        minimums={str(c): _decimal(m, f"minimums.{c}") for c, m in minimums.items()},
        requester=None if requester is None else parse_requester(requester, zengin_names),
        fees=parse_transfer_fees(fees))


def load_policy(path: Path = DEFAULT_PAYOUT_CONFIG) -> PayoutPolicy:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"payout configuration {path}: {exc}") from exc
    return parse_policy(data)
