"""Zengin 入出金取引明細 files written field by field, the way a bank writes them:
for the golden fixtures (`tests/fixtures/make_statements.py`), the tests of bad
files and the benchmark. The layout is `docs/reconciliation.md`'s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

ACCOUNT = ("0001", "001", "1", "1234567")  # the demo payout config's requester account


def wareki(day: date) -> str:
    return f"{day.year - 2018:02d}{day.month:02d}{day.day:02d}"


def _n(value: int | str, width: int) -> str:
    text = str(value).rjust(width, "0")
    assert len(text) == width, (value, width)
    return text


def _c(value: str, width: int) -> str:
    assert len(value.encode("shift_jis")) <= width, (value, width)
    return value.ljust(width)


def _record(*fields: str) -> bytes:
    raw = "".join(fields).encode("shift_jis")
    assert len(raw) == 200, len(raw)
    return raw


@dataclass(frozen=True)
class Line:
    booked: date
    direction: str  # credit / debit
    amount: int
    counterparty: str = ""
    summary: str = ""
    edi: str = ""
    inquiry: int = 0
    kind: str = "11"


def header(created: date, date_from: date, date_to: date, opening: int,
           account: tuple[str, str, str, str] = ACCOUNT) -> bytes:
    bank, branch, account_type, number = account
    return _record("1", "03", "0", wareki(created), wareki(date_from), wareki(date_to),
                   bank, _c("ﾃﾞﾓｷﾞﾝｺｳ", 15), branch, _c("ﾎﾝﾃﾝ", 15), "000", account_type,
                   number, _c("ｾﾂﾄﾙﾒﾝﾄ ﾃﾞﾓ(ｶ", 40), "1" if opening >= 0 else "2", "0",
                   _n(abs(opening), 14), " " * 74)


def data(line: Line) -> bytes:
    return _record("2", _n(line.inquiry, 8), wareki(line.booked), wareki(line.booked),
                   "1" if line.direction == "credit" else "2", line.kind, _n(line.amount, 12),
                   _n(0, 12), "000000", "000000", "0", "0000000", "000", _n(0, 10),
                   _c(line.counterparty, 48), _c("", 15), _c("", 15), _c(line.summary, 20),
                   _c(line.edi, 20), " ")


def trailer(lines: Iterable[Line], opening: int, closing: int | None = None,
            records: int | None = None) -> bytes:
    lines = list(lines)
    credits = [x.amount for x in lines if x.direction == "credit"]
    debits = [x.amount for x in lines if x.direction == "debit"]
    if closing is None:
        closing = opening + sum(credits) - sum(debits)
    return _record("8", _n(len(credits), 6), _n(sum(credits), 13), _n(len(debits), 6),
                   _n(sum(debits), 13), "1" if closing >= 0 else "2", _n(abs(closing), 14),
                   _n(len(lines) if records is None else records, 7), " " * 139)


def end() -> bytes:
    return _record("9", " " * 199)


def statement(created: date, date_from: date, date_to: date, opening: int,
              lines: Iterable[Line], account: tuple[str, str, str, str] = ACCOUNT,
              crlf: bool = False) -> bytes:
    """A whole file of one section."""
    lines = list(lines)
    records = [header(created, date_from, date_to, opening, account),
               *(data(x) for x in lines), trailer(lines, opening), end()]
    return b"".join(r + (b"\r\n" if crlf else b"") for r in records)
