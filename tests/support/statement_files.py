"""The golden statement files of tests/fixtures/statements/, as data: the worked
example of docs/reconciliation.md. The safeguarded account 0001-001-1-1234567
from 2026-12-01 (Tue) to 2026-12-03 (Thu), one section per day.
`tests/fixtures/make_statements.py` writes them; the tests hold the files to it."""

from __future__ import annotations

from datetime import date

from support.statements import Line, statement

D1, D2, D3 = date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)
OPENING = 1_000_000

DAY1 = [
    # a client's payment naming its payment_ref (EDI情報)
    Line(D1, "credit", 11000, "ﾔﾏﾀﾞ ﾀﾛｳ", edi="PAY-101", inquiry=1),
    # a payment with no reference: matched by amount and name
    Line(D1, "credit", 5500, "ﾀﾅｶｼﾖｳｼﾞ(ｶ", inquiry=2),
    # one payment for two fundings, both refs in 摘要
    Line(D1, "credit", 5500, "ｽｽﾞｷ ﾊﾅｺ", summary="PAY-103 PAY-104", inquiry=3),
]
DAY2 = [
    # the payout run's 総合振込, one debit for the file's total
    Line(D2, "debit", 15000, "", summary="ｿｳｺﾞｳﾌﾘｺﾐ", inquiry=4),
    # the bank's charge for it, in no ledger
    Line(D2, "debit", 660, "", summary="ﾌﾘｺﾐﾃｽｳﾘﾖｳ", inquiry=5, kind="18"),
]
DAY3 = [
    # a transfer sent back (振込不能)
    Line(D3, "credit", 7000, "ｻﾄｳ ｼﾞﾛｳ", summary="ﾌﾘｺﾐﾌﾉｳ", inquiry=6),
]


def _closing(opening: int, lines: list[Line]) -> int:
    return opening + sum(x.amount if x.direction == "credit" else -x.amount for x in lines)


def days(*sections: tuple[date, list[Line]], opening: int = OPENING) -> bytes:
    """One file, a section per day, each opening where the last closed."""
    parts = []
    for day, lines in sections:
        parts.append(statement(D3, day, day, opening, lines)[:-200])  # without its end record
        opening = _closing(opening, lines)
    return b"".join(parts) + statement(D3, D3, D3, 0, [])[-200:]


FILES = {
    # days 1 and 2
    "scenario-d1-d2.zengin": lambda: days((D1, DAY1), (D2, DAY2)),
    # days 2 and 3: overlaps the first on day 2
    "scenario-d2-d3.zengin": lambda: days((D2, DAY2), (D3, DAY3),
                                          opening=_closing(OPENING, DAY1)),
    # the three days with CRLF after each record
    "scenario-crlf.zengin": lambda: statement(D3, D1, D3, OPENING, DAY1 + DAY2 + DAY3,
                                              crlf=True),
}


CSV_TEXT = (
    "date,direction,amount,counterparty,reference\n"
    "2026-12-01,credit,11000,ﾔﾏﾀﾞ ﾀﾛｳ,PAY-101\n"
    "2026-12-01,credit,5500,ﾀﾅｶｼﾖｳｼﾞ(ｶ,\n"
    "2026-12-01,credit,5500,ｽｽﾞｷ ﾊﾅｺ,PAY-103 PAY-104\n"
    "2026-12-02,debit,15000,,ｿｳｺﾞｳﾌﾘｺﾐ\n"
    "2026-12-02,debit,660,,ﾌﾘｺﾐﾃｽｳﾘﾖｳ\n"
    "2026-12-03,credit,7000,ｻﾄｳ ｼﾞﾛｳ,ﾌﾘｺﾐﾌﾉｳ\n")
