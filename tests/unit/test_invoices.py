"""Qualified invoices on an in-memory event store: the hand-computed month of
each fee plan (`support/invoices.py`), the true-up, numbering, repeats,
corrections and refusals; and the rules alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from settlement.core.errors import Rejected, SettlementError
from settlement.core.money import Money
from settlement.core.months import Month
from settlement.invoices.charges import WORKER_FEE, Charge
from settlement.invoices.document import document_data, document_sha256
from settlement.invoices.events import InvoiceIssued
from settlement.invoices.issue import correct, issue_month
from settlement.invoices.issuer import Issuer
from settlement.invoices.monthly import invoice_pass
from settlement.invoices.rules import draft, invoice_tax
from settlement.ledger import accounts
from settlement.payouts.run import payout_run
from support import invoices as fx
from support import memory

ISSUER = Issuer("株式会社セトルメント", "東京都千代田区丸の内1-1-1", "T7000012050002")
NOVEMBER = Month(2026, 11)
DECEMBER_1 = datetime.fromisoformat("2026-12-01T00:00:00+09:00")


@pytest.fixture
def app() -> Iterator[memory.MemoryApp]:
    yield memory.MemoryApp()


def invoices(app: memory.MemoryApp) -> list[InvoiceIssued]:
    return [e for e in app.stored() if isinstance(e, InvoiceIssued)]


def yen_balances(app: memory.MemoryApp) -> dict[str, Decimal]:
    """The JPY ledger's balances (none: a month in dollars)."""
    return app.balances() if any(p.amount.currency.code == "JPY" for p in app.postings()) \
        else {}


@pytest.mark.parametrize("plan", ["tiered", "flat", "usd_standard"])
def test_a_month_of_releases_under_each_plan(app: memory.MemoryApp, plan: str) -> None:
    app.apply(fx.parties("x", "w1", "c1") + fx.month_of_releases(plan, "x", "w1", "c1", "j1"))
    before = yen_balances(app)
    report = issue_month(app, NOVEMBER, DECEMBER_1, ISSUER)
    issued = {e.party_id: e for e in invoices(app)}
    for side, party in (("worker", "w1"), ("client", "c1")):
        expected = fx.EXPECTED[plan][side]
        if expected is None:
            assert party not in issued
            continue
        charged, posted, tax = expected
        invoice = issued[party]
        assert len(invoice.lines) == fx.MILESTONES
        assert [t["rate"] for t in invoice.totals] == ["0.10"]
        total = invoice.totals[0]
        assert (total["total"]["amount"], total["posted_tax"]["amount"],
                total["tax"]["amount"]) == (str(charged), str(posted), str(tax))
        assert invoice.total.amount == charged and invoice.tax.amount == tax
        revenue = accounts.REVENUE_WORKER_FEES if side == "worker" else \
            accounts.REVENUE_CLIENT_FEES
        assert [(p.account, p.side, p.amount.amount) for p in invoice.postings] == [
            (revenue, "debit", tax - posted), (accounts.CONSUMPTION_TAX, "credit", tax - posted)]
        assert invoice.period == "2026-11" and invoice.issued_on == "2026-12-01"
        assert invoice.issuer["registration_number"] == "T7000012050002"
        assert [line["date"] for line in invoice.lines] == [
            f"2026-11-{d:02d}" for d in range(2, 7)]
    after = yen_balances(app)
    moved = sum(e[2] - e[1] for e in fx.EXPECTED[plan].values() if e is not None)
    assert after.get(accounts.CONSUMPTION_TAX, 0) - before.get(accounts.CONSUMPTION_TAX, 0) \
        == moved
    # The parties' accounts do not move: their charge is unchanged.
    assert {a: b for a, b in after.items() if "payable" in a or "escrow" in a} == \
        {a: b for a, b in before.items() if "payable" in a or "escrow" in a}
    assert report.summary()["issued"] == len(issued)


def test_numbers_run_without_gaps_and_a_second_run_issues_nothing(
        app: memory.MemoryApp) -> None:
    for n in range(3):
        app.apply(fx.month_of_releases("flat", f"j{n}", f"w{n}", "c1", f"job-{n}"))
    first = issue_month(app, NOVEMBER, DECEMBER_1, ISSUER)
    numbers = [e.number for e in invoices(app)]
    assert numbers == [f"INV-202612-{n:06d}" for n in range(1, 5)]
    assert [e.party_id for e in invoices(app)] == ["c1", "w0", "w1", "w2"]
    assert first.summary()["first"] == "INV-202612-000001"
    again = issue_month(app, NOVEMBER, DECEMBER_1 + timedelta(days=3), ISSUER)
    assert again.issued == [] and again.existing == numbers
    assert len(invoices(app)) == 4
    # October, issued in December too, numbers on from the same stream.
    app.apply(fx.month_of_releases("flat", "oct", "w9", "c9", "job-oct",
                                   start=datetime.fromisoformat("2026-10-05T01:00:00+00:00")))
    issue_month(app, Month(2026, 10), DECEMBER_1 + timedelta(days=4), ISSUER)
    assert [e.number for e in invoices(app)][4:] == ["INV-202612-000005",
                                                     "INV-202612-000006"]
    # January's issue restarts at 1.
    app.apply(fx.month_of_releases("flat", "dec", "w8", "c8", "job-dec",
                                   start=datetime.fromisoformat("2026-12-05T01:00:00+00:00")))
    issue_month(app, Month(2026, 12), datetime.fromisoformat("2027-01-01T00:00:00+09:00"),
                ISSUER)
    assert [e.number for e in invoices(app)][6:] == ["INV-202701-000001",
                                                     "INV-202701-000002"]


def test_a_month_not_over_in_japan_is_refused_and_nothing_is_written(
        app: memory.MemoryApp) -> None:
    app.apply(fx.month_of_releases("flat", "x", "w1", "c1", "j1"))
    stored = len(app.stored())
    with pytest.raises(Rejected) as refused:
        # 23:59:59 JST on November 30th: 14:59:59 UTC, November still.
        issue_month(app, NOVEMBER, DECEMBER_1 - timedelta(seconds=1), ISSUER)
    assert refused.value.code == "month_not_over"
    assert len(app.stored()) == stored


def test_the_month_is_the_japanese_one(app: memory.MemoryApp) -> None:
    # Released 2026-11-30T15:30Z = 2026-12-01 00:30 JST: December's, not November's.
    late = datetime.fromisoformat("2026-11-30T15:28:00+00:00")
    app.apply(fx.month_of_releases("flat", "x", "w1", "c1", "j1", [10_100], start=late))
    issue_month(app, NOVEMBER, DECEMBER_1, ISSUER)
    assert [e.party_id for e in invoices(app)] == []
    issue_month(app, Month(2026, 12), datetime.fromisoformat("2027-01-01T00:00:00+09:00"),
                ISSUER)
    assert sorted(e.party_id for e in invoices(app)) == ["c1", "w1"]


def test_a_correction_cites_the_invoice_and_moves_only_the_rest(
        app: memory.MemoryApp) -> None:
    app.apply(fx.month_of_releases("flat", "x", "w1", "c1", "j1", [10_100] * 3))
    issue_month(app, NOVEMBER, DECEMBER_1, ISSUER)
    first = {e.party_id: e for e in invoices(app)}["w1"]
    # 3 × 1,666 = 4,998 → tax floor(454.36) = 454, posted 3 × 151 = 453.
    assert (first.tax.amount, first.postings[0].amount.amount) == (454, 1)
    with pytest.raises(SettlementError) as unchanged:
        correct(app, first.number, DECEMBER_1 + timedelta(days=1), ISSUER)
    assert unchanged.value.code == "invoice_unchanged"
    # A release of November stored late: 1,666 more.
    app.apply(fx.month_of_releases("flat", "y", "w1", "c1", "j2", [10_100],
                                   start=datetime.fromisoformat("2026-11-20T01:00:00+00:00")))
    report = correct(app, first.number, DECEMBER_1 + timedelta(days=2), ISSUER)
    fixed = invoices(app)[-1]
    assert report.summary()["issued"] == 1 and fixed.corrects == first.number
    assert fixed.number == "INV-202612-000003" and len(fixed.lines) == 4
    # 6,664 → floor(605.81) = 605; posted 4 × 151 = 604, of which 1 moved already.
    assert fixed.tax.amount == 605 and fixed.postings == []
    for code, number in (("invoice_superseded", first.number),
                         ("unknown_invoice", "INV-202612-000099"),
                         ("unknown_invoice", "nonsense")):
        with pytest.raises(SettlementError) as refused:
            correct(app, number, DECEMBER_1 + timedelta(days=3), ISSUER)
        assert refused.value.code == code


def test_the_document_hash_is_of_the_data_shown(app: memory.MemoryApp) -> None:
    app.apply(fx.parties("x", "w1", "c1") + fx.month_of_releases("flat", "x", "w1", "c1", "j"))
    issue_month(app, NOVEMBER, DECEMBER_1, ISSUER)
    for event in invoices(app):
        assert event.document_sha256 == document_sha256(document_data(vars(event)))
    assert {e.party_id: e.recipient["name"] for e in invoices(app)} == {
        "w1": "山田 太郎", "c1": "=株式会社エーシー"}


def _charge(n: int, amount: int, tax: int, account_kind: str = WORKER_FEE,
            rate: str = "0.10") -> Charge:
    return Charge("p", account_kind, datetime.fromisoformat("2026-11-02T00:00:00+00:00"), n,
                  "j", f"i{n}", None, Decimal(amount), Decimal(tax), Decimal(rate))


def test_the_tax_is_rounded_once_per_rate() -> None:
    assert invoice_tax(Decimal(7_275), Decimal("0.10")) == 661
    assert invoice_tax(Decimal(1_100), Decimal("0.10")) == 100
    assert invoice_tax(Decimal(1_080), Decimal("0.08")) == 80
    made = draft("p", [_charge(1, 2_425, 220), _charge(2, 2_425, 220), _charge(3, 1_080, 80,
                                                                             rate="0.08")])
    assert [(t.rate, t.total, t.tax, t.posted_tax) for t in made.totals] == [
        (Decimal("0.08"), 1_080, 80, 80), (Decimal("0.10"), 4_850, 440, 440)]
    assert made.postings == []


def test_a_negative_difference_moves_tax_back_to_revenue() -> None:
    # Posted more than the invoice's tax: 2 × 1,009 incl. with 92 each (too much).
    made = draft("p", [_charge(1, 1_009, 92), _charge(2, 1_009, 92)])
    assert made.totals[0].tax == 183  # floor(2,018 / 11)
    assert [(p.account, p.side, p.amount.amount) for p in made.postings] == [
        (accounts.CONSUMPTION_TAX, "debit", 1), (accounts.REVENUE_WORKER_FEES, "credit", 1)]


def test_the_timer_issues_the_month_once_the_events_reach_the_next(
        app: memory.MemoryApp) -> None:
    app.apply(fx.month_of_releases("flat", "x", "w1", "c1", "j1", [10_100]))
    done: set[Month] = set()
    wall = datetime.fromisoformat("2027-03-01T00:00:00+09:00")  # far ahead of the events
    # The events' time is November: October is invoiced (nothing: the log starts later).
    assert invoice_pass(app, wall, ISSUER, done) is None and invoices(app) == []
    # A first event of December: November is over by the events' time.
    app.apply([fx.cloud_event("late", "party.registered",
                              datetime.fromisoformat("2026-12-01T00:05:00+09:00"),
                              {"party_id": "p9", "kind": "individual", "name": "N",
                               "name_kana": "エヌ"})])
    report = invoice_pass(app, wall, ISSUER, done)
    assert report is not None and report.summary()["issued"] == 2
    assert {e.issued_on for e in invoices(app)} == {"2026-12-01"}
    assert invoice_pass(app, wall, ISSUER, done) is None  # once
    assert Month(2026, 11) in done


def test_a_transfer_fee_is_a_charge_unless_its_payout_failed(app: memory.MemoryApp) -> None:
    app.apply(fx.parties("x", "w1", "c1", payee_bears=True)
              + fx.month_of_releases("flat", "x", "w1", "c1", "j1"))
    paid_at = datetime.fromisoformat("2026-11-20T00:00:00+00:00")
    report = payout_run(app, paid_at, "run-1", policy=memory.POLICY)
    (payout,) = [p.payout for p in report.payouts if p.party_id == "w1"]
    assert (payout.transfer_fee, payout.transfer_fee_tax) == (Money(660, "JPY"),
                                                              Money(60, "JPY"))
    app2 = memory.MemoryApp()  # the same month, the payout failed before the issue
    app2.apply(fx.parties("x", "w1", "c1", payee_bears=True)
               + fx.month_of_releases("flat", "x", "w1", "c1", "j1"))
    payout_run(app2, paid_at, "run-1", policy=memory.POLICY)
    app2.result("payout.failed", "f-1", paid_at + timedelta(hours=1),
                payout_id=payout.payout_id, reason="closed")
    for target, kinds, tax in ((app, ["worker_fee"] * 5 + ["transfer_fee"], 817),
                               (app2, ["worker_fee"] * 5, 757)):
        issue_month(target, NOVEMBER, DECEMBER_1, ISSUER)
        worker = {e.party_id: e for e in invoices(target)}["w1"]
        assert [line["kind"] for line in worker.lines] == kinds
        assert worker.tax.amount == tax
