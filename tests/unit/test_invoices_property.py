"""Property (SPEC §12): for any month of releases, once the month is issued the
ledger's consumption tax on the month's fees equals Σ invoice tax, and each
party's invoiced total equals Σ (fee + fee tax) posted with its charges."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.core.months import Month
from settlement.escrow.events import MilestoneFunded, MilestoneReleased
from settlement.invoices.events import InvoiceIssued
from settlement.invoices.issue import issue_month
from settlement.invoices.issuer import Issuer
from settlement.ledger import accounts
from support import invoices as fx
from support import memory

ISSUER = Issuer("株式会社セトルメント", "東京都千代田区丸の内1-1-1", "T7000012050002")
START = datetime.fromisoformat("2026-11-01T00:00:00+09:00")
jobs = st.lists(st.tuples(st.sampled_from(["tiered", "flat"]), st.integers(0, 2),
                          st.lists(st.integers(1_000, 300_000), min_size=1, max_size=4),
                          st.integers(0, 24)),
                min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs)
def test_invoice_tax_is_the_ledgers(drawn: list[tuple[str, int, list[int], int]]) -> None:
    app = memory.MemoryApp()
    for n, (plan, worker, amounts, day) in enumerate(drawn):
        app.apply(fx.month_of_releases(plan, f"j{n}", f"w{worker}", f"c{n % 2}", f"job-{n}",
                                       amounts, start=START + timedelta(days=day)))
    issue_month(app, Month(2026, 11), datetime.fromisoformat("2026-12-01T00:00:00+09:00"),
                ISSUER)
    stored = app.stored()
    invoices = [e for e in stored if isinstance(e, InvoiceIssued)]
    tax = sum((p.amount.amount if p.side == "credit" else -p.amount.amount
               for e in stored if Month(2026, 11).contains(e.timestamp)
               or isinstance(e, InvoiceIssued)
               for p in e.postings if p.account == accounts.CONSUMPTION_TAX), Decimal(0))
    assert tax == sum((i.tax.amount for i in invoices), Decimal(0))
    charged: dict[str, Decimal] = {}
    for event in stored:
        if isinstance(event, MilestoneReleased):
            r = event.release
            charged[r.worker_id] = charged.get(r.worker_id, Decimal(0)) + (
                r.fee + r.fee_tax).amount
        elif isinstance(event, MilestoneFunded):
            f = event.funding
            client = app.escrows[event.job_id].client_id
            charged[client] = charged.get(client, Decimal(0)) + (
                f.client_fee + f.client_fee_tax).amount
    assert {i.party_id: i.total.amount for i in invoices} == {
        p: v for p, v in charged.items() if v}
    for invoice in invoices:  # the postings balance and move only revenue and tax
        assert sum((p.signed() for p in invoice.postings), Decimal(0)) == 0
        assert {p.account for p in invoice.postings} <= {
            accounts.CONSUMPTION_TAX, accounts.REVENUE_WORKER_FEES, accounts.REVENUE_CLIENT_FEES}
