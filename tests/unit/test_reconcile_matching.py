"""Matching statement lines to the ledger's cash (settlement/reconcile/matching.py):
the worked example of docs/reconciliation.md by hand, each rule and refusal, and a
property: statements generated from random ledgers, with lines dropped,
duplicated or altered, never match wrongly and show every damaged line open."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.reconcile.matching import (
    BANK_FEE,
    CREDIT,
    DEBIT,
    FUNDING,
    MATCH,
    PAYOUT,
    REMITTANCE,
    RETURN,
    RUN,
    UNMATCH,
    BankLine,
    Decision,
    Expected,
    Match,
    Open,
    match,
)

D = date(2026, 12, 1)  # a Tuesday
NOV30 = date(2026, 11, 30)

LEDGER = [
    Expected("funding:1", FUNDING, CREDIT, 11000, NOV30, "pay-101", "ﾔﾏﾀﾞﾀﾛｳ"),
    Expected("funding:2", FUNDING, CREDIT, 5500, NOV30, "pay-102", "ﾀﾅｶｼﾖｳｼﾞ(ｶ"),
    Expected("funding:3", FUNDING, CREDIT, 3300, NOV30, "pay-103", "ｽｽﾞｷﾊﾅｺ"),
    Expected("funding:4", FUNDING, CREDIT, 2200, NOV30, "pay-104", "ｽｽﾞｷﾊﾅｺ"),
    Expected("funding:5", FUNDING, CREDIT, 4400, NOV30, "pay-105", "ｲﾄｳｹﾝ"),
    Expected("run:r1", RUN, DEBIT, 15000, date(2026, 12, 2), members=("payout:p1", "payout:p2")),
    Expected("payout:p1", PAYOUT, DEBIT, 8000, date(2026, 12, 2)),
    Expected("payout:p2", PAYOUT, DEBIT, 7000, date(2026, 12, 2)),
    Expected("return:p2", RETURN, CREDIT, 7000, date(2026, 12, 3), name="ｻﾄｳｼﾞﾛｳ"),
]
STATEMENT = [
    BankLine("a", D, CREDIT, 11000, "ﾔﾏﾀﾞﾀﾛｳ", "PAY-101"),
    BankLine("b", D, CREDIT, 5500, "ﾀﾅｶｼﾖｳｼﾞ(ｶ", ""),
    BankLine("c", D, CREDIT, 5500, "ｽｽﾞｷﾊﾅｺ", "PAY-103 PAY-104"),
    BankLine("d", date(2026, 12, 2), DEBIT, 15000, "", "ｿｳｺﾞｳﾌﾘｺﾐ"),
    BankLine("e", date(2026, 12, 2), DEBIT, 660, "", "ﾌﾘｺﾐﾃｽｳﾘﾖｳ"),
    BankLine("f", date(2026, 12, 3), CREDIT, 7000, "ｻﾄｳｼﾞﾛｳ", "ﾌﾘｺﾐﾌﾉｳ"),
]


def test_the_worked_example() -> None:
    result = match(STATEMENT, LEDGER)
    assert result.matches == {
        "a": Match("a", "payment_ref", ("funding:1",)),
        "b": Match("b", "amount_name", ("funding:2",)),
        "c": Match("c", "payment_ref", ("funding:3", "funding:4")),
        "d": Match("d", "run_total", ("run:r1",)),
        "f": Match("f", "returned_transfer", ("return:p2",)),
    }
    assert result.open == {"e": Open("e", "no_candidate")}
    # The funding whose money never came; the run's payouts are covered by its debit.
    assert [e.key for e in result.unmatched_expected(LEDGER)] == ["funding:5"]


def test_finance_decisions_come_first() -> None:
    decisions = {"e": Decision("e", BANK_FEE), "b": Decision("b", UNMATCH),
                 "x": Decision("x", MATCH, ("funding:5",))}
    lines = [*STATEMENT, BankLine("x", D, CREDIT, 4400, "ｲﾄｳ", "")]
    result = match(lines, LEDGER, decisions)
    assert result.matches["e"] == Match("e", "bank_fee", ())
    assert result.matches["x"] == Match("x", "manual", ("funding:5",))
    assert result.open["b"] == Open("b", "unmatched_by_hand")
    assert [e.key for e in result.unmatched_expected(LEDGER)] == ["funding:2"]


def test_one_credit_for_two_fundings_by_amount_and_name() -> None:
    result = match([BankLine("c", D, CREDIT, 5500, "ｽｽﾞｷﾊﾅｺ", "")], LEDGER)
    assert result.matches["c"] == Match("c", "amount_name_combined", ("funding:3", "funding:4"))


def test_ambiguity_is_never_guessed() -> None:
    twins = [Expected("funding:7", FUNDING, CREDIT, 1000, NOV30, "", "ｱ"),
             Expected("funding:8", FUNDING, CREDIT, 1000, D, "", "ｱ")]
    result = match([BankLine("z", D, CREDIT, 1000, "ｱ", "")], twins)
    assert result.open["z"] == Open("z", "ambiguous", (("funding:7",), ("funding:8",)))
    assert result.matches == {}


def test_a_line_twice_leaves_the_second_open() -> None:
    line = BankLine("a", D, CREDIT, 11000, "ﾔﾏﾀﾞﾀﾛｳ", "PAY-101")
    again = BankLine("a2", D, CREDIT, 11000, "ﾔﾏﾀﾞﾀﾛｳ", "PAY-101")
    result = match([line, again], LEDGER)
    assert result.matches["a"].targets == ("funding:1",)
    assert result.open["a2"] == Open("a2", "already_matched", (("funding:1",),))


def test_a_reference_with_the_wrong_amount_stays_open() -> None:
    result = match([BankLine("a", D, CREDIT, 10999, "ﾔﾏﾀﾞﾀﾛｳ", "PAY-101")], LEDGER)
    assert result.open["a"] == Open("a", "amount_differs", (("funding:1",),))


def test_outside_three_business_days_is_no_candidate() -> None:
    # 2026-11-30 (Mon) + 3 business days = 2026-12-03 (Thu); 12-04 is out.
    assert match([BankLine("b", date(2026, 12, 3), CREDIT, 5500, "ﾀﾅｶｼﾖｳｼﾞ(ｶ", "")],
                 LEDGER).matches
    late = match([BankLine("b", date(2026, 12, 4), CREDIT, 5500, "ﾀﾅｶｼﾖｳｼﾞ(ｶ", "")], LEDGER)
    assert late.open["b"].reason == "no_candidate"


def test_single_payouts_when_the_bank_debits_each() -> None:
    lines = [BankLine("p1", date(2026, 12, 2), DEBIT, 8000, "", ""),
             BankLine("p2", date(2026, 12, 2), DEBIT, 7000, "", "")]
    result = match(lines, LEDGER)
    assert (result.matches["p1"].rule, result.matches["p1"].targets) == ("payout", ("payout:p1",))
    assert result.matches["p2"].targets == ("payout:p2",)


def test_a_withholding_remittance_paid_from_the_account() -> None:
    # The tax office's debit, confirmed in the ledger on 12-10 (Thu), booked by the
    # bank on 12-10; a payout of the same amount in the window makes it ambiguous.
    remitted = Expected("remittance:wr-1", REMITTANCE, DEBIT, 30630, date(2026, 12, 10))
    line = BankLine("t", date(2026, 12, 10), DEBIT, 30630, "", "ｾﾞｲﾑｼﾖ")
    result = match([line], [*LEDGER, remitted])
    assert result.matches["t"] == Match("t", "remittance", ("remittance:wr-1",))
    assert result.unmatched_expected([remitted]) == []
    twin = Expected("payout:p9", PAYOUT, DEBIT, 30630, date(2026, 12, 9))
    both = match([line], [remitted, twin])
    assert both.open["t"] == Open("t", "ambiguous", (("payout:p9",), ("remittance:wr-1",)))
    # Never paid: the remittance stays expected.
    assert [e.key for e in match([], [remitted]).unmatched_expected([remitted])] == [
        "remittance:wr-1"]


# The property --------------------------------------------------------------------

CLIENTS = ["ｱｵｷ", "ｲﾉｳｴ", "ｳｴﾀﾞ", "ｴﾝﾄﾞｳ"]


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[list[Expected], list[tuple[BankLine, str]]]:
    """Fundings (amounts in hundreds, distinct per client) and single payouts, and
    the statement the bank would send: each line with the key it truly pays."""
    expected: list[Expected] = []
    truth: list[tuple[BankLine, str]] = []
    count = draw(st.integers(1, 25))
    used: set[tuple[str, int]] = set()
    for n in range(count):
        day = D + timedelta(days=draw(st.integers(0, 20)))
        if draw(st.booleans()):
            name = draw(st.sampled_from(CLIENTS))
            free = sorted(set(range(10, 501)) - {a for client, a in used if client == name})
            amount = draw(st.sampled_from(free)) * 100
            used.add((name, amount // 100))
            ref = f"pay-{n}" if draw(st.booleans()) else ""
            e = Expected(f"funding:{n}", FUNDING, CREDIT, amount, day, ref, name)
            line = BankLine(f"l{n}", day, CREDIT, amount, name, ref.upper())
        else:
            amount = draw(st.integers(10, 500)) * 100 + 50_000 * n
            e = Expected(f"payout:{n}", PAYOUT, DEBIT, amount, day)
            line = BankLine(f"l{n}", day, DEBIT, amount, "", "")
        expected.append(e)
        truth.append((line, e.key))
    return expected, truth


@settings(max_examples=100, deadline=None)
@given(ledgers(), st.data())
def test_damaged_lines_show_up_and_no_match_is_wrong(
        ledger: tuple[list[Expected], list[tuple[BankLine, str]]], data: st.DataObject) -> None:
    expected, truth = ledger
    lines: list[BankLine] = []
    true_key: dict[str, str | None] = {}
    damaged: set[str] = set()
    dropped: set[str] = set()
    for line, key in truth:
        fate = data.draw(st.sampled_from(["keep", "keep", "drop", "twice", "alter"]))
        if fate == "drop":
            dropped.add(key)
            continue
        if fate == "alter":  # an amount no ledger entry has (never a whole hundred)
            line = BankLine(line.line_id, line.booked, line.direction,
                            line.amount + data.draw(st.integers(1, 99)), line.counterparty,
                            line.reference)
            true_key[line.line_id], damaged = None, damaged | {line.line_id}
            dropped.add(key)
        else:
            true_key[line.line_id] = key
        lines.append(line)
        if fate == "twice":
            copy = BankLine(line.line_id + "-again", line.booked, line.direction, line.amount,
                            line.counterparty, line.reference)
            lines.append(copy)
            true_key[copy.line_id] = key
    result = match(lines, expected)
    for line_id, found in result.matches.items():  # nothing that matched is wrong
        assert found.targets == (true_key[line_id],), (line_id, found)
    for line_id in damaged:  # every altered line is open
        assert line_id in result.open
    unmatched = {e.key for e in result.unmatched_expected(expected)}
    assert dropped <= unmatched  # every dropped (or altered) line's entry shows
    for line, _ in truth:  # of a line twice, one is open
        copy = line.line_id + "-again"
        if copy in true_key:
            assert (line.line_id in result.open) != (copy in result.open)
    assert len(result.matches) + len(result.open) == len(lines)


def test_a_stream_of_ordered_lines_matches_the_same_and_keeps_only_the_open() -> None:
    decisions = {"b": Decision("b", UNMATCH), "x": Decision("x", MATCH, ("funding:5",))}
    lines = [*STATEMENT, BankLine("x", D, CREDIT, 4400, "ｲﾄｳ", "")]
    ordered = sorted(lines, key=lambda line: (line.booked, line.line_id))
    opened: list[BankLine] = []
    streamed = match(iter(ordered), LEDGER, decisions, ordered=True, on_open=opened.append)
    whole = match(lines, LEDGER, decisions)
    assert (streamed.matches, streamed.open, streamed.covered) == (
        whole.matches, whole.open, whole.covered)
    assert [line.line_id for line in opened] == ["b", "e"]
