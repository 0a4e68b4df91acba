"""The Zengin 入出金取引明細 reader (settlement/banking/statement.py) on golden
files and on each kind of bad file, as a table of input → code and record."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from settlement.banking.statement import (
    Header,
    Movement,
    StatementError,
    Trailer,
    read_statement,
    wareki_date,
)
from support import statement_files as fixtures
from support import statements as s

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "statements"
D1 = date(2026, 12, 1)


def read(data: bytes) -> list[Header | Movement | Trailer]:
    return list(read_statement(io.BytesIO(data)))


@pytest.mark.parametrize("name", sorted(fixtures.FILES))
def test_the_golden_files_are_what_the_maker_writes(name: str) -> None:
    assert (GOLDEN / name).read_bytes() == fixtures.FILES[name]()


def test_the_golden_csv_is_what_the_maker_writes() -> None:
    assert (GOLDEN / "scenario.csv").read_text("utf-8") == fixtures.CSV_TEXT


def test_a_file_of_two_days_reads_field_by_field() -> None:
    records = read((GOLDEN / "scenario-d1-d2.zengin").read_bytes())
    assert [type(r).__name__ for r in records] == [
        "Header", "Movement", "Movement", "Movement", "Trailer",
        "Header", "Movement", "Movement", "Trailer"]
    header = records[0]
    assert isinstance(header, Header)
    assert (header.date_from, header.date_to, header.opening_balance) == (D1, D1, 1_000_000)
    assert (header.account.bank_code, header.account.branch_code, header.account.account_type,
            header.account.account_number) == ("0001", "001", "1", "1234567")
    assert header.account.masked() == "0001-001-****567"
    first, _, both = records[1], records[2], records[3]
    assert first == Movement(2, "1", D1, D1, "credit", "11", 11000, "ﾔﾏﾀﾞ ﾀﾛｳ", "PAY-101")
    assert isinstance(both, Movement) and both.reference == "PAY-103 PAY-104"
    trailer = records[4]
    assert trailer == Trailer(5, 3, 22000, 0, 0, 1_022_000, 3)
    fee = records[7]
    assert isinstance(fee, Movement)
    assert (fee.direction, fee.kind, fee.amount, fee.counterparty, fee.reference) == (
        "debit", "18", 660, "", "ﾌﾘｺﾐﾃｽｳﾘﾖｳ")
    assert records[8] == Trailer(9, 0, 0, 2, 15660, 1_022_000 - 15660, 2)


def test_records_followed_by_crlf_read_the_same() -> None:
    records = read((GOLDEN / "scenario-crlf.zengin").read_bytes())
    movements = [r for r in records if isinstance(r, Movement)]
    assert [(m.booked.day, m.direction, m.amount) for m in movements] == [
        (1, "credit", 11000), (1, "credit", 5500), (1, "credit", 5500),
        (2, "debit", 15000), (2, "debit", 660), (3, "credit", 7000)]


class Trickle(io.RawIOBase):
    """A stream that answers every read with at most 7 bytes (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self.data.read(min(7, size))


def test_short_reads_are_read_on() -> None:
    data = (GOLDEN / "scenario-d1-d2.zengin").read_bytes()
    assert list(read_statement(Trickle(data))) == read(data)


def test_wareki_dates_are_reiwa() -> None:
    assert wareki_date("081201", 1, "d") == date(2026, 12, 1)
    assert wareki_date("010501", 1, "d") == date(2019, 5, 1)
    for bad in ("010430", "000101", "081301", "08120A", "0812"):
        with pytest.raises(StatementError):
            wareki_date(bad, 1, "d")


LINE = s.Line(D1, "credit", 1000, "ﾔﾏﾀﾞ ﾀﾛｳ", inquiry=1)


def _file(*records: bytes) -> bytes:
    return b"".join(records)


def _replace(record: bytes, at: int, new: bytes) -> bytes:
    return record[:at] + new + record[at + len(new):]


HEAD, DATA, TRAIL, END = (s.header(D1, D1, D1, 500), s.data(LINE), s.trailer([LINE], 500),
                          s.end())

BAD = [
    ("a short record", _file(HEAD, DATA[:-1]), "statement_record_length", 2),
    ("CRLF missing after a record", HEAD + b"\r\n" + DATA + b"\r\n" + TRAIL + END,
     "statement_record_length", 3),
    ("bytes that are not Shift_JIS", _file(HEAD, _replace(DATA, 81, b"\x85\x20"), TRAIL, END),
     "statement_encoding", 2),
    ("a kanji in a name", _file(HEAD, _replace(DATA, 81, "山".encode("shift_jis")), TRAIL, END),
     "statement_encoding", 2),
    ("UTF-8 instead of Shift_JIS", _file(HEAD, DATA.decode("shift_jis").encode()[:200], TRAIL,
                                         END), "statement_encoding", 2),
    ("a data record before any header", _file(DATA, END), "statement_record_order", 1),
    ("a record after the end", _file(HEAD, DATA, TRAIL, END, END), "statement_record_order", 5),
    ("no end record", _file(HEAD, DATA, TRAIL), "statement_truncated", 4),
    ("no trailer", _file(HEAD, DATA, END), "statement_record_order", 3),
    ("another kind of file (種別 01)", _file(_replace(HEAD, 1, b"01"), END),
     "statement_field_format", 1),
    ("a date that does not exist", _file(_replace(HEAD, 4, b"081232"), END),
     "statement_field_format", 1),
    ("an amount of zero", _file(HEAD, _replace(DATA, 24, b"0" * 12), TRAIL, END),
     "statement_field_format", 2),
    ("入払区分 3", _file(HEAD, _replace(DATA, 21, b"3"), TRAIL, END), "statement_field_format",
     2),
    ("a line outside the header's period", _file(
        HEAD, s.data(s.Line(date(2026, 12, 2), "credit", 1000)), TRAIL, END),
     "statement_field_format", 2),
    ("a trailer with one credit too many", _file(HEAD, DATA, _replace(TRAIL, 1, b"000002"), END),
     "statement_trailer_mismatch", 3),
    ("a trailer whose credit total is off by one", _file(
        HEAD, DATA, _replace(TRAIL, 7, b"0000000001001"), END), "statement_trailer_mismatch", 3),
    ("a closing balance that does not follow", _file(
        HEAD, DATA, s.trailer([LINE], 500, closing=1499), END), "statement_trailer_mismatch", 3),
    ("a record count that does not add up", _file(
        HEAD, DATA, s.trailer([LINE], 500, records=2), END), "statement_trailer_mismatch", 3),
]


@pytest.mark.parametrize(("data", "code", "record"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_a_bad_file_is_refused_at_its_record(data: bytes, code: str, record: int) -> None:
    with pytest.raises(StatementError) as caught:
        read(data)
    assert (caught.value.code, caught.value.record) == (code, record)
    assert caught.value.message.startswith(f"record {record}: ")


def test_an_empty_file_has_no_end() -> None:
    with pytest.raises(StatementError) as caught:
        read(b"")
    assert caught.value.code == "statement_truncated"


def test_the_quick_reading_of_a_data_record_is_the_field_by_field_one() -> None:
    from settlement.banking.statement import _Fields, _movement, _quick_movement

    for name in ("scenario-d1-d2.zengin", "scenario-crlf.zengin"):
        header = None
        for record in read((GOLDEN / name).read_bytes()):
            if isinstance(record, Header):
                header = record
            if isinstance(record, Movement):
                assert header is not None
                text = s.data(s.Line(record.booked, record.direction, record.amount,
                                     record.counterparty, edi=record.reference,
                                     inquiry=int(record.inquiry_number or 0),
                                     kind=record.kind)).decode("shift_jis")
                slow = _movement(_Fields(text[1:], record.record), header)
                assert _quick_movement(text, record.record, header) == slow
