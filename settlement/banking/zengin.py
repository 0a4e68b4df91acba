"""The 総合振込 (bulk transfer) file in the Zengin format, byte for byte (SPEC §11).

120-byte records, each followed by CRLF, in Shift_JIS: one header `1`, a data
record `2` per transfer, a trailer `8` with the count and total computed here,
and an end record `9`. Numeric fields are right-aligned and zero-filled, text
fields left-aligned and padded with spaces to their width in bytes after
encoding. The field widths are §11's table; `tests/unit/test_banking_zengin.py`
spells a whole file out by hand.

The writer converts nothing: names come in already in the Zengin set (see
`kana.to_zengin` and `transfer_to`), and a field that does not fit is refused,
never cut or padded into another meaning. Checks, in the order the file is
written (requester, then each transfer in turn, then the trailer):

| refusal | code |
|---|---|
| no transfers, or more than 999,999 (6 digits); checked first | `zengin_transfer_count` |
| a code or number not ASCII digits, or wider than its field | `zengin_field_format` |
| a name field empty where the bank needs one (依頼人名, 受取人名) | `zengin_field_missing` |
| a character outside the Zengin set | `zengin_field_not_representable` |
| a text field longer than its width in bytes | `zengin_field_too_long` |
| an amount that is not a whole number of yen above 0 | `transfer_amount_not_positive` |
| an amount over 10 digits | `transfer_amount_too_large` |
| a total over 12 digits | `zengin_total_too_large` |
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date

from settlement.banking.accounts import ACCOUNT_TYPE_CODES, AccountType, BankAccount
from settlement.banking.kana import ZENGIN_CHARACTERS
from settlement.banking.transfers import Requester, Transfer
from settlement.core.errors import InvalidInput

RECORD_BYTES = 120
RECORD_END = b"\r\n"
ENCODING = "shift_jis"
TRANSFERS_MAX = 999_999
AMOUNT_YEN_MAX = 9_999_999_999
TOTAL_YEN_MAX = 999_999_999_999


class ZenginError(InvalidInput):
    """Data the Zengin file cannot carry as given; `code` says why."""

    code = "zengin_field_format"


def _numeric(field: str, value: str, width: int, exact: bool = False) -> bytes:
    digits = isinstance(value, str) and value.isascii() and value.isdigit()
    if not digits or len(value) > width:
        raise ZenginError(f"{field} must be up to {width} ASCII digits")
    if exact and len(value) != width:
        raise ZenginError(f"{field} must be exactly {width} digits")
    return value.rjust(width, "0").encode("ascii")


def _optional_numeric(field: str, value: str | None, width: int) -> bytes:
    return b"0" * width if value is None else _numeric(field, value, width)


def _text(field: str, value: str, width: int, required: bool = False) -> bytes:
    if required and not value.strip(" "):
        raise ZenginError(f"{field} is empty", "zengin_field_missing")
    if not ZENGIN_CHARACTERS.issuperset(value):
        raise ZenginError(f"{field} has a character outside the Zengin set",
                          "zengin_field_not_representable")
    encoded = value.encode(ENCODING, errors="strict")
    if len(encoded) > width:
        raise ZenginError(f"{field} is {len(encoded)} bytes, more than {width}",
                          "zengin_field_too_long")
    return encoded.ljust(width, b" ")


def _account_type(field: str, account_type: AccountType) -> bytes:
    code = ACCOUNT_TYPE_CODES.get(account_type)
    if code is None:
        raise ZenginError(f"{field} must be one of {sorted(ACCOUNT_TYPE_CODES)}")
    return code.encode("ascii")


def _amount(field: str, amount_yen: int) -> bytes:
    # `bool` is an `int`, and a Decimal or float has no place in a yen amount.
    if type(amount_yen) is not int or amount_yen <= 0:
        raise ZenginError(f"{field} must be a whole number of yen above 0",
                          "transfer_amount_not_positive")
    if amount_yen > AMOUNT_YEN_MAX:
        raise ZenginError(f"{field} is over 10 digits", "transfer_amount_too_large")
    return str(amount_yen).rjust(10, "0").encode("ascii")


def _record(*fields: bytes) -> bytes:
    record = b"".join(fields)
    assert len(record) == RECORD_BYTES, f"record of {len(record)} bytes"
    return record + RECORD_END


def header_record(requester: Requester, payment_day: date) -> bytes:
    return _record(
        b"1", b"21", b"0",
        _numeric("依頼人コード", requester.code, 10),
        _text("依頼人名", requester.name_kana, 40, required=True),
        payment_day.strftime("%m%d").encode("ascii"),
        _numeric("仕向銀行番号", requester.bank_code, 4, exact=True),
        _text("仕向銀行名", requester.bank_name_kana, 15),
        _numeric("仕向支店番号", requester.branch_code, 3, exact=True),
        _text("仕向支店名", requester.branch_name_kana, 15),
        _account_type("預金種目", requester.account_type),
        _numeric("口座番号", requester.account_number, 7, exact=True),
        b" " * 17,
    )


def data_record(transfer: Transfer, index: int) -> bytes:
    """The data record of the `index`-th transfer (0-based; messages count from 1)."""
    where = f"transfer {index + 1}"
    return _record(
        b"2",
        _numeric(f"{where} 被仕向銀行番号", transfer.bank_code, 4, exact=True),
        _text(f"{where} 被仕向銀行名", transfer.bank_name_kana, 15),
        _numeric(f"{where} 被仕向支店番号", transfer.branch_code, 3, exact=True),
        _text(f"{where} 被仕向支店名", transfer.branch_name_kana, 15),
        b"0000",
        _account_type(f"{where} 預金種目", transfer.account_type),
        _numeric(f"{where} 口座番号", transfer.account_number, 7, exact=True),
        _text(f"{where} 受取人名", transfer.holder_name, 30, required=True),
        _amount(f"{where} 振込金額", transfer.amount_yen),
        b"0",
        _optional_numeric(f"{where} 顧客コード1", transfer.customer_code1, 10),
        _optional_numeric(f"{where} 顧客コード2", transfer.customer_code2, 10),
        b"7", b" ", b" " * 7,
    )


def trailer_record(count: int, total_yen: int) -> bytes:
    if total_yen > TOTAL_YEN_MAX:
        raise ZenginError("the total is over 12 digits", "zengin_total_too_large")
    return _record(b"8", b"%06d" % count, b"%012d" % total_yen, b" " * 101)


def end_record() -> bytes:
    return _record(b"9", b" " * 119)


def write_zengin(requester: Requester, payment_day: date, transfers: Sequence[Transfer]) -> bytes:
    """The whole 総合振込 file paying `transfers` on `payment_day` (取組日)."""
    if not 1 <= len(transfers) <= TRANSFERS_MAX:
        raise ZenginError(f"a file holds 1 to {TRANSFERS_MAX} transfers, not {len(transfers)}",
                          "zengin_transfer_count")
    header = header_record(requester, payment_day)
    data = [data_record(transfer, index) for index, transfer in enumerate(transfers)]
    total_yen = sum(transfer.amount_yen for transfer in transfers)
    return b"".join([header, *data, trailer_record(len(transfers), total_yen), end_record()])


def file_sha256(content: bytes) -> str:
    """The SHA-256 of a file's bytes, in hex: what the run records (SPEC §11)."""
    return hashlib.sha256(content).hexdigest()


def transfer_to(account: BankAccount, amount_yen: int,
                customer_code1: str | None = None, customer_code2: str | None = None) -> Transfer:
    """The transfer paying `amount_yen` into `account`; `NameNotRepresentable`
    (`name_not_representable`, a hold reason of §11) if its holder has no Zengin name."""
    bank_name, branch_name = account.zengin_bank_names()
    return Transfer(
        bank_code=account.bank_code, bank_name_kana=bank_name,
        branch_code=account.branch_code, branch_name_kana=branch_name,
        account_type=account.account_type, account_number=account.account_number,
        holder_name=account.zengin_holder_name(), amount_yen=amount_yen,
        customer_code1=customer_code1, customer_code2=customer_code2,
    )
