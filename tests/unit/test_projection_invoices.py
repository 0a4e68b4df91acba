"""The invoices projection (pure): an issued invoice's row, its true-up's ledger
entries and audit row, each once however often the relay delivers its event
(at least once), in the batch or from an earlier one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from settlement.core.months import Month
from settlement.invoices.events import InvoiceIssued
from settlement.invoices.issue import issue_month
from settlement.invoices.issuer import Issuer
from settlement.projections.model.changes import fold
from settlement.projections.model.envelope import parse
from settlement.relay.cloudevents import to_cloud_event
from support import invoices as fx
from support import memory

ISSUER = Issuer("株式会社セトルメント", "東京都千代田区丸の内1-1-1", "T7000012050002")


def issued() -> list[Any]:
    app = memory.MemoryApp()
    app.apply(fx.month_of_releases("flat", "x", "w1", "c1", "j1"))
    issue_month(app, Month(2026, 11), datetime.fromisoformat("2026-12-01T00:00:00+09:00"),
                ISSUER)
    return [parse(to_cloud_event(100 + n, e)) for n, e in enumerate(
        e for e in app.stored() if isinstance(e, InvoiceIssued))]


def test_an_invoice_folds_into_its_row_entries_and_audit_once() -> None:
    client, worker = issued()
    changes = fold([client, worker, worker], {}, {})  # the worker's delivered twice
    assert sorted(changes.invoices) == ["INV-202612-000001", "INV-202612-000002"]
    row = changes.invoices["INV-202612-000002"]
    assert (row.party_id, row.period, row.total, row.tax, row.currency) == (
        "w1", "2026-11", Decimal(8_330), Decimal(757), "JPY")
    assert [(e.account, e.side, e.amount) for e in changes.entries] == [
        ("revenue:platform_fees:client", "debit", 2), ("liabilities:consumption_tax", "credit", 2),
        ("revenue:platform_fees:worker", "debit", 2), ("liabilities:consumption_tax", "credit", 2)]
    assert [a.position for a in changes.audit] == [100, 101] and changes.duplicates == 1
    # Stored by an earlier batch: nothing again.
    again = fold([worker], {}, {}, invoices={"INV-202612-000002"})
    assert (again.invoices, again.entries, again.audit, again.duplicates) == ({}, [], [], 1)
