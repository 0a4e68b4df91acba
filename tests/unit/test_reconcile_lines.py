"""Statement lines from CSV, and line identity (settlement/reconcile/lines.py);
the size limit on a stream with no size (settlement/reconcile/importing.py)."""

from __future__ import annotations

import io
from datetime import date

import pytest

from settlement.banking.statement import StatementError
from settlement.core.errors import InvalidInput
from settlement.reconcile.importing import _Hashing
from settlement.reconcile.lines import Identities, Line, counterparty_key, csv_lines

HEAD = "date,direction,amount,counterparty,reference\n"


def test_csv_lines_with_their_line_numbers() -> None:
    lines = list(csv_lines(io.StringIO(HEAD + "2026-12-01,credit,11000,ヤマダ タロウ,PAY-101\n"
                                       '2026-12-02,debit,660,,"fee, December"\n')))
    assert lines == [Line(2, date(2026, 12, 1), "credit", 11000, "ﾔﾏﾀﾞ ﾀﾛｳ", "PAY-101"),
                     Line(3, date(2026, 12, 2), "debit", 660, "", "fee, December")]


@pytest.mark.parametrize(("row", "message"), [
    ("2026-12-01,credit,11000,X", "4 columns"),
    ("2026/12/01,credit,11000,X,", "date must be YYYY-MM-DD"),
    ("2026-12-01,in,11000,X,", "direction must be credit or debit"),
    ("2026-12-01,credit,1e4,X,", "amount must be a whole number"),
    ("2026-12-01,credit,011000,X,", "amount must be a whole number"),
    ("2026-12-01,credit,-5,X,", "amount must be a whole number"),
    ("2026-12-01,credit,0,X,", "amount must be a whole number"),
    ("2026-12-01,credit,11000.5,X,", "amount must be a whole number"),
    ("2026-12-01,credit,1000000000001,X,", "amount is above"),
    ("", "a blank line"),
])
def test_a_bad_csv_line_is_refused_with_its_number(row: str, message: str) -> None:
    with pytest.raises(StatementError) as caught:
        list(csv_lines(io.StringIO(HEAD + "2026-12-01,credit,1,X,\n" + row + "\n")))
    assert caught.value.code == "statement_field_format"
    assert caught.value.message.startswith("line 3: ")
    assert message in caught.value.message


def test_identical_lines_of_one_file_are_distinct_and_stable() -> None:
    line = Line(1, date(2026, 12, 1), "credit", 1000, "ﾔﾏﾀﾞ", "")
    first, again = Identities("acct"), Identities("acct")
    ids = [first.line_id(line), first.line_id(line)]
    assert ids[0] != ids[1]
    assert [again.line_id(line), again.line_id(line)] == ids  # the next import: the same
    assert Identities("other").line_id(line) != ids[0]


def test_names_compare_in_their_zengin_form_without_spaces() -> None:
    assert counterparty_key("ヤマダ タロウ") == counterparty_key("ﾔﾏﾀﾞﾀﾛｳ") == "ﾔﾏﾀﾞﾀﾛｳ"
    assert counterparty_key("山田 太郎") == "山田太郎"


def test_a_stream_past_the_limit_is_refused_as_it_is_read() -> None:
    stream = _Hashing(io.BytesIO(b"x" * 5000), 4096)
    with pytest.raises(InvalidInput) as caught:
        while stream.read(1000):
            pass
    assert caught.value.code == "statement_too_large"
    assert stream.read_bytes <= 5000


def test_the_size_limit_comes_from_the_option_the_environment_or_the_default() -> None:
    from settlement.cli.reconcile import bytes_max
    from settlement.core.errors import ConfigError
    from settlement.reconcile.importing import STATEMENT_BYTES_MAX

    assert bytes_max(10, {"SETTLEMENT_STATEMENT_BYTES_MAX": "20"}) == 10
    assert bytes_max(None, {"SETTLEMENT_STATEMENT_BYTES_MAX": "20"}) == 20
    assert bytes_max(None, {}) == STATEMENT_BYTES_MAX
    with pytest.raises(ConfigError):
        bytes_max(None, {"SETTLEMENT_STATEMENT_BYTES_MAX": "-1"})
