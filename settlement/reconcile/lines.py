"""Statement lines as the service keeps them, from either format (SPEC §13), and
each line's stable identity.

A line's id is a digest of what the bank says about the movement: the account,
the booking date, the direction, the amount, the counterparty and the
reference, plus its occurrence among identical lines of the same file (two
identical transfers on one day are two lines). The same file, or an overlapping
one that repeats a day, gives the same ids again, so importing it twice adds
nothing (`importing` keeps each id once). The 照会番号 is kept as data but is not
part of the id: banks number it per inquiry, not per movement.

A day's closing balance (the Zengin trailer's 取引後残高) is kept once per
(account, day); the same day stated with another balance is refused.

Pure: the reader of a file is a generator over lines of text or records.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from settlement.banking.kana import NameNotRepresentable, to_zengin
from settlement.banking.statement import (
    CREDIT,
    DEBIT,
    Account,
    Header,
    Movement,
    Readable,
    StatementError,
    Trailer,
    read_statement,
)

ZENGIN, CSV = "zengin", "csv"
CURRENCY = "JPY"
CSV_COLUMNS = ("date", "direction", "amount", "counterparty", "reference")
TEXT_CHARS_MAX = 200  # a CSV counterparty or reference
AMOUNT_YEN_MAX = 10**12  # SPEC §3's maximum amount


@dataclass(frozen=True)
class Line:
    record: int          # record (Zengin) or line (CSV) number in the file, 1-based
    booked: date
    direction: str       # credit / debit
    amount: int          # yen
    counterparty: str    # the Zengin form where it has one, else as given
    reference: str
    kind: str = ""       # 取引区分 (Zengin only)
    inquiry_number: str = ""


@dataclass(frozen=True)
class Balance:
    """The bank's balance at the end of `day` (the trailer's 取引後残高)."""

    record: int
    day: date
    opening: int
    closing: int


def counterparty_key(name: str) -> str:
    """A name as matching compares it: its Zengin form without spaces, or the
    upper-cased text where it has none."""
    try:
        return to_zengin(name, 200).replace(" ", "")
    except NameNotRepresentable:
        return "".join(name.split()).upper()


class Identities:
    """The ids of one file's lines in order (see the module doc)."""

    def __init__(self, account: str) -> None:
        self.account = account
        self._seen: dict[bytes, int] = {}

    def line_id(self, line: Line) -> str:
        content = "\x1f".join((self.account, line.booked.isoformat(), line.direction,
                               str(line.amount), line.counterparty, line.reference))
        digest = hashlib.blake2b(content.encode(), digest_size=16).digest()
        occurrence = self._seen[digest] = self._seen.get(digest, 0) + 1
        return hashlib.blake2b(digest + occurrence.to_bytes(4, "big"),
                               digest_size=16).hexdigest()


def balance_id(account: str, day: date) -> str:
    return f"{account}:{day.isoformat()}"


def account_key(account: Account) -> str:
    """The account as line ids and balances name it (masked: ids are published)."""
    return account.masked()


# Zengin ------------------------------------------------------------------------------


def zengin_items(stream: Readable) -> Iterator[Account | Line | Balance]:
    """The file's accounts (one per section, first), lines and day balances."""
    header: Header | None = None
    for record in read_statement(stream):
        if isinstance(record, Header):
            header = record
            yield record.account
        elif isinstance(record, Movement):
            yield Line(record.record, record.booked, record.direction, record.amount,
                       record.counterparty, record.reference, record.kind,
                       record.inquiry_number)
        elif isinstance(record, Trailer):
            assert header is not None, "the reader checks a trailer follows a header"
            yield Balance(record.record, header.date_to, header.opening_balance,
                          record.closing_balance)


# CSV ---------------------------------------------------------------------------------


def _csv_error(number: int, message: str, code: str = "statement_field_format") -> StatementError:
    return StatementError(number, message, code, unit="line")


def _csv_amount(text: str, number: int) -> int:
    if not (text.isascii() and text.isdigit()) or text.startswith("0"):
        raise _csv_error(number, "amount must be a whole number of yen above 0, "
                         "without sign, separators or leading zeros")
    amount = int(text)
    if amount > AMOUNT_YEN_MAX:
        raise _csv_error(number, f"amount is above {AMOUNT_YEN_MAX}")
    return amount


def _csv_line(number: int, row: list[str]) -> Line:
    if len(row) != len(CSV_COLUMNS):
        raise _csv_error(number, f"{len(row)} columns, not {len(CSV_COLUMNS)} "
                         f"({', '.join(CSV_COLUMNS)})")
    day_text, direction, amount, counterparty, reference = (cell.strip() for cell in row)
    try:
        booked = date.fromisoformat(day_text)
    except ValueError:
        raise _csv_error(number, "date must be YYYY-MM-DD") from None
    if len(day_text) != 10:
        raise _csv_error(number, "date must be YYYY-MM-DD")
    if direction not in (CREDIT, DEBIT):
        raise _csv_error(number, f"direction must be {CREDIT} or {DEBIT}")
    if len(counterparty) > TEXT_CHARS_MAX or len(reference) > TEXT_CHARS_MAX:
        raise _csv_error(number, f"counterparty and reference are at most {TEXT_CHARS_MAX} "
                         "characters")
    if "\x00" in counterparty or "\x00" in reference:  # no database text holds one
        raise _csv_error(number, "a NUL character")
    try:
        name = to_zengin(counterparty, 48) if counterparty else ""
    except NameNotRepresentable:
        name = counterparty
    return Line(number, booked, direction, _csv_amount(amount, number), name, reference)


def csv_lines(text_lines: Iterable[str]) -> Iterator[Line]:
    """The lines of a CSV statement (UTF-8 text lines); a first line naming the
    columns is skipped, blank lines are not allowed."""
    reader = csv.reader(text_lines, strict=True)
    for row in reader:
        number = reader.line_num
        if number == 1 and [cell.strip().lower() for cell in row] == list(CSV_COLUMNS):
            continue
        if not row:
            raise _csv_error(number, "a blank line")
        yield _csv_line(number, row)
