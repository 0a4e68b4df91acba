"""What the money and audit alerts watch: safeguarding coverage per currency,
claims near or past their payout deadline, and the hash chain's last
verification (run by the API, see `verifier`; absent until one finished)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from settlement.api.metrics.catalogue import gauge
from settlement.api.queries.deadlines import DeadlineExposure
from settlement.api.queries.safeguarding import Safeguarding
from settlement.api.verifier import Verified


def safeguarding(coverage: list[Safeguarding]) -> Iterator[Metric]:
    cash = gauge("settlement_safeguarding_cash", ["currency"])
    obligations = gauge("settlement_safeguarding_obligations", ["currency"])
    shortfall = gauge("settlement_safeguarding_shortfall", ["currency"])
    for s in coverage:
        cash.add_metric([s.currency], float(s.cash))
        obligations.add_metric([s.currency], float(s.obligations))
        shortfall.add_metric([s.currency], float(s.shortfall))
    yield from (cash, obligations, shortfall)


def deadlines(exposures: list[DeadlineExposure]) -> Iterator[Metric]:
    due_soon = gauge("settlement_receivables_due_soon", ["currency"])
    due_soon_amount = gauge("settlement_receivables_due_soon_amount", ["currency"])
    overdue = gauge("settlement_receivables_overdue", ["currency"])
    overdue_amount = gauge("settlement_receivables_overdue_amount", ["currency"])
    for d in exposures:
        due_soon.add_metric([d.currency], d.due_soon)
        due_soon_amount.add_metric([d.currency], float(d.due_soon_amount))
        overdue.add_metric([d.currency], d.overdue)
        overdue_amount.add_metric([d.currency], float(d.overdue_amount))
    yield from (due_soon, due_soon_amount, overdue, overdue_amount)


def audit_chain(verified: Verified | None) -> Iterator[Metric]:
    ok = gauge("settlement_audit_chain_ok")
    checked = gauge("settlement_audit_chain_events_checked")
    at = gauge("settlement_audit_chain_verified_timestamp_seconds")
    if verified is not None:
        ok.add_metric([], int(verified.result.ok))
        checked.add_metric([], verified.result.events_checked)
        at.add_metric([], verified.at)
    yield from (ok, checked, at)
