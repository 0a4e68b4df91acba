"""The Zengin 入出金取引明細 (deposit and withdrawal statement) file, read record
by record (SPEC §13). The layout, field by field, is in `docs/reconciliation.md`.

200-byte records in Shift_JIS (each optionally followed by CRLF, the same for
the whole file): per account and period a header `1`, a data record `2` per
movement, a trailer `8`; then one end record `9`. Dates are in the Japanese era
calendar (和暦 YYMMDD, Reiwa). The reader is a generator over a binary stream: it
holds one record at a time, so a file of any size costs the same memory.

Refusals, each with the 1-based record number, in the order they are checked:

| refusal | code |
|---|---|
| a record short of 200 bytes, or without the file's record end | `statement_record_length` |
| bytes that are not Shift_JIS, or characters outside the Zengin set | `statement_encoding` |
| a record out of order (data before a header, after the end, …) | `statement_record_order` |
| a field that is not what its layout says (digits, a code, a date) | `statement_field_format` |
| a trailer whose counts, sums or closing balance do not add up | `statement_trailer_mismatch` |
| no end record | `statement_truncated` |
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import NoReturn, Protocol

from settlement.banking.kana import ZENGIN_CHARACTERS
from settlement.core.errors import InvalidInput

RECORD_BYTES = 200
BLOCK_RECORDS = 4_096  # records read at a time (800 KiB)
ENCODING = "shift_jis"
KIND_CODE = "03"  # 種別コード: 入出金取引明細
REIWA_START = date(2019, 5, 1)
CREDIT, DEBIT = "credit", "debit"
_DIRECTIONS = {"1": CREDIT, "2": DEBIT}
# What a record's text fields may hold: the Zengin set, plus the lower case and
# the few signs some banks leave in 摘要 and EDI情報.
_TEXT = frozenset(ZENGIN_CHARACTERS) | frozenset("abcdefghijklmnopqrstuvwxyz,:_+*&'\"")
_OUTSIDE = re.compile("[^" + re.escape("".join(sorted(_TEXT))) + "]")


class StatementError(InvalidInput):
    """A statement file refused whole; `record` is the 1-based record number."""

    code = "statement_field_format"

    def __init__(self, record: int, message: str, code: str | None = None,
                 unit: str = "record") -> None:
        super().__init__(f"{unit} {record}: {message}", code)
        self.record = record


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Account:
    bank_code: str
    branch_code: str
    account_type: str  # 預金種目: 1 ordinary, 2 current, 4 savings
    account_number: str

    def masked(self) -> str:
        return f"{self.bank_code}-{self.branch_code}-****{self.account_number[-3:]}"


@dataclass(frozen=True)
class Header:
    record: int
    created: date
    date_from: date
    date_to: date
    account: Account
    opening_balance: int  # yen, negative when overdrawn


@dataclass(frozen=True)
class Movement:
    record: int
    inquiry_number: str  # 照会番号, "" when the bank sent none
    booked: date         # 勘定日
    value_date: date     # 預入・払出日
    direction: str       # credit / debit
    kind: str            # 取引区分 (10 cash, 11 transfer, 14 book transfer, …)
    amount: int          # yen, > 0
    counterparty: str    # 振込依頼人名 (kana), "" when none
    reference: str       # 摘要内容 and EDI情報, joined by a space


@dataclass(frozen=True)
class Trailer:
    record: int
    credits: int
    credit_total: int
    debits: int
    debit_total: int
    closing_balance: int  # 取引後残高, negative when overdrawn
    records: int          # データ・レコード件数


Record = Header | Movement | Trailer


def wareki_date(text: str, record: int, name: str) -> date:
    """A Reiwa YYMMDD as a date (R01 = 2019, from 1 May)."""
    day = _reiwa(text)
    if day is None:
        _refuse_date(text, record, name)
    return day


@functools.lru_cache(maxsize=4_096)
def _reiwa(text: str) -> date | None:
    """The date of a valid Reiwa YYMMDD, else None (a file holds few distinct dates)."""
    if len(text) != 6 or not (text.isascii() and text.isdigit()) or text[:2] == "00":
        return None
    try:
        day = date(2018 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        return None
    return day if day >= REIWA_START else None


def _refuse_date(text: str, record: int, name: str) -> NoReturn:
    if len(text) != 6 or not (text.isascii() and text.isdigit()):
        raise StatementError(record, f"{name} is not YYMMDD digits")
    try:
        date(2018 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        raise StatementError(record, f"{name} {text} is not a date") from None
    raise StatementError(record, f"{name} {text} is not a Reiwa date")


class _Fields:
    """Cuts one decoded record into its fields, left to right."""

    def __init__(self, text: str, record: int) -> None:
        self.text, self.record, self.at = text, record, 0

    def take(self, width: int) -> str:
        value = self.text[self.at:self.at + width]
        self.at += width
        return value

    def digits(self, width: int, name: str) -> str:
        value = self.take(width)
        if not (value.isascii() and value.isdigit()):
            raise StatementError(self.record, f"{name} is not {width} digits")
        return value

    def number(self, width: int, name: str) -> int:
        return int(self.digits(width, name))

    def day(self, name: str) -> date:
        return wareki_date(self.take(6), self.record, name)

    def signed(self, name: str) -> int:
        """貸越区分 (1 plus, 2 minus) then a 14-digit balance."""
        sign = self.take(1)
        if sign not in ("1", "2"):
            raise StatementError(self.record, f"{name}: 貸越区分 must be 1 or 2")
        value = self.number(14, name)
        return value if sign == "1" else -value


def _decode(raw: bytes, record: int) -> str:
    try:
        text = raw.decode(ENCODING)
    except UnicodeDecodeError:
        raise StatementError(record, "not Shift_JIS", "statement_encoding") from None
    # Half-width kana are one byte each in Shift_JIS, so 200 bytes are 200 characters;
    # anything else (a double-byte character) shifts every field after it.
    if len(text) != RECORD_BYTES or _OUTSIDE.search(text):
        raise StatementError(record, "characters outside the Zengin set",
                             "statement_encoding")
    return text


def _header(fields: _Fields) -> Header:
    if fields.digits(2, "種別コード") != KIND_CODE:
        raise StatementError(fields.record, f"種別コード is not {KIND_CODE} (入出金取引明細)")
    fields.take(1)  # コード区分
    created, date_from, date_to = (fields.day("作成日"), fields.day("勘定日(自)"),
                                   fields.day("勘定日(至)"))
    if date_from > date_to:
        raise StatementError(fields.record, "勘定日(自) is after 勘定日(至)")
    bank = fields.digits(4, "銀行コード")
    fields.take(15)
    branch = fields.digits(3, "支店コード")
    fields.take(15 + 3)  # 支店名, ダミー
    account_type = fields.digits(1, "預金種目")
    account_number = fields.digits(7, "口座番号")
    fields.take(40)  # 口座名
    sign = fields.take(1)
    fields.take(1)  # 通帳・証書区分
    balance = fields.number(14, "取引前残高")
    if sign not in ("1", "2"):
        raise StatementError(fields.record, "取引前残高: 貸越区分 must be 1 or 2")
    return Header(fields.record, created, date_from, date_to,
                  Account(bank, branch, account_type, account_number),
                  balance if sign == "1" else -balance)


# A data record whose numeric fields are digits, cut in one match (the common case:
# the field-by-field reader below then only runs to say what is wrong).
_DATA = re.compile(r"2(\d{8})(\d{6})(\d{6})([12])(\d{2})(\d{12})\d{45}(.{48}).{30}(.{20})(.{20}).",
                   re.DOTALL)


def _quick_movement(text: str, number: int, header: Header) -> Movement | None:
    """The movement of a well-formed data record, None for any other."""
    found = _DATA.fullmatch(text)
    if found is None:
        return None
    inquiry, booked_text, value_text, direction, kind, amount_text, name, summary, edi = (
        found.groups())
    booked, value_date, amount = _reiwa(booked_text), _reiwa(value_text), int(amount_text)
    if (booked is None or value_date is None or amount <= 0
            or not header.date_from <= booked <= header.date_to):
        return None
    summary, edi = summary.strip(), edi.strip()
    return Movement(number, inquiry.lstrip("0"), booked, value_date, _DIRECTIONS[direction],
                    kind, amount, name.rstrip(), f"{summary} {edi}" if summary and edi
                    else summary or edi)


def _movement(fields: _Fields, header: Header) -> Movement:
    inquiry = fields.digits(8, "照会番号").lstrip("0")
    booked, value_date = fields.day("勘定日"), fields.day("預入・払出日")
    direction = _DIRECTIONS.get(fields.take(1))
    if direction is None:
        raise StatementError(fields.record, "入払区分 must be 1 (入金) or 2 (出金)")
    kind = fields.digits(2, "取引区分")
    amount = fields.number(12, "取引金額")
    if amount <= 0:
        raise StatementError(fields.record, "取引金額 must be above 0")
    if not header.date_from <= booked <= header.date_to:
        raise StatementError(fields.record, f"勘定日 {booked} is outside the header's period")
    # うち他店券金額, 交換呈示日, 不渡返還日, 手形・小切手区分と番号, 僚店番号, 振込依頼人コード
    fields.take(12 + 6 + 6 + 1 + 7 + 3 + 10)
    counterparty = fields.take(48).rstrip()
    fields.take(15 + 15)  # 仕向銀行名, 仕向店名
    summary, edi = fields.take(20).strip(), fields.take(20).strip()
    return Movement(fields.record, inquiry, booked, value_date, direction, kind, amount,
                    counterparty, " ".join(part for part in (summary, edi) if part))


def _trailer(fields: _Fields) -> Trailer:
    credits, credit_total = fields.number(6, "入金件数"), fields.number(13, "入金額合計")
    debits, debit_total = fields.number(6, "出金件数"), fields.number(13, "出金額合計")
    closing = fields.signed("取引後残高")
    records = fields.number(7, "データ・レコード件数")
    return Trailer(fields.record, credits, credit_total, debits, debit_total, closing, records)


@dataclass
class _Section:
    header: Header
    credits: int = 0
    credit_total: int = 0
    debits: int = 0
    debit_total: int = 0

    def add(self, movement: Movement) -> None:
        if movement.direction == CREDIT:
            self.credits, self.credit_total = self.credits + 1, self.credit_total + movement.amount
        else:
            self.debits, self.debit_total = self.debits + 1, self.debit_total + movement.amount

    def check(self, trailer: Trailer) -> None:
        expected = (self.credits, self.credit_total, self.debits, self.debit_total)
        stated = (trailer.credits, trailer.credit_total, trailer.debits, trailer.debit_total)
        if stated != expected:
            raise StatementError(trailer.record, f"trailer states (入金件数, 入金額合計, 出金件数, "
                                 f"出金額合計) {stated}, the records add up to {expected}",
                                 "statement_trailer_mismatch")
        if trailer.records != self.credits + self.debits:
            raise StatementError(trailer.record, f"trailer states {trailer.records} data records,"
                                 f" the file holds {self.credits + self.debits}",
                                 "statement_trailer_mismatch")
        closing = self.header.opening_balance + self.credit_total - self.debit_total
        if trailer.closing_balance != closing:
            raise StatementError(trailer.record, f"取引後残高 {trailer.closing_balance} is not "
                                 f"取引前残高 + 入金 − 出金 = {closing}",
                                 "statement_trailer_mismatch")


def _records(stream: Readable) -> Iterator[tuple[int, str]]:
    """(record number, decoded text) of every record; the record end (none or CRLF)
    is the first record's, and every record must have it. Read `BLOCK_RECORDS`
    records at a time."""
    buffer = _read(stream, RECORD_BYTES + 2)
    end = b"\r\n" if buffer[RECORD_BYTES:RECORD_BYTES + 2] == b"\r\n" else b""
    size, number = RECORD_BYTES + len(end), 0
    while True:
        buffer += _read(stream, size * BLOCK_RECORDS - len(buffer))
        at_end = len(buffer) < size * BLOCK_RECORDS  # `_read` is short only at the end
        whole = len(buffer) - len(buffer) % size
        for at in range(0, whole, size):
            number += 1
            if end and buffer[at + RECORD_BYTES:at + size] != end:
                raise StatementError(number, f"records are {RECORD_BYTES} bytes each "
                                     "followed by CRLF", "statement_record_length")
            yield number, _decode(buffer[at:at + RECORD_BYTES], number)
        buffer = buffer[whole:]
        if at_end:
            if buffer:
                raise StatementError(number + 1, f"records are {RECORD_BYTES} bytes"
                                     + (" each followed by CRLF" if end else ""),
                                     "statement_record_length")
            return


def _read(stream: Readable, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of the stream."""
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            break
        data += part
    return data


def read_statement(stream: Readable) -> Iterator[Record]:
    """Every header, movement and trailer of the file, in order, each checked; the
    file is refused (`StatementError`) at the first record that is wrong."""
    section: _Section | None = None
    ended, number = False, 0
    for number, text in _records(stream):
        kind = text[0]
        if ended:
            raise StatementError(number, "a record after the end record", "statement_record_order")
        fields = _Fields(text[1:], number)
        if kind == "1" and section is None:
            section = _Section(_header(fields))
            yield section.header
        elif kind == "2" and section is not None:
            movement = (_quick_movement(text, number, section.header)
                        or _movement(fields, section.header))
            section.add(movement)
            yield movement
        elif kind == "8" and section is not None:
            trailer = _trailer(fields)
            section.check(trailer)
            section = None
            yield trailer
        elif kind == "9" and section is None:
            ended = True
        else:
            raise StatementError(number, f"a record {kind!r} here is out of order",
                                 "statement_record_order")
    if not ended:
        raise StatementError(number + 1, "the file has no end record", "statement_truncated")
