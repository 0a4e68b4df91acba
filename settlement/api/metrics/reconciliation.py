"""What the reconciliation alerts watch (SPEC §13): the bank lines still open and
their amount, the ledger's cash movements with no bank line past three business
days and their amount, and the last statement day's difference between the
bank's closing balance and the ledger's cash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client.core import Metric

from settlement.api.metrics.catalogue import gauge
from settlement.api.queries import reconciliation as queries
from settlement.banking.calendar import jst_date


def reconciliation(conn: psycopg.Connection[Any] | None, schema: str,
                   now: datetime) -> Iterator[Metric]:
    """The families, with samples once statements are projected (`conn` None: none)."""
    lines = gauge("settlement_reconciliation_unmatched_lines", ["currency"])
    lines_amount = gauge("settlement_reconciliation_unmatched_amount", ["currency"])
    ledger = gauge("settlement_reconciliation_ledger_unmatched", ["currency"])
    ledger_amount = gauge("settlement_reconciliation_ledger_unmatched_amount", ["currency"])
    difference = gauge("settlement_reconciliation_difference", ["currency"])
    found = None if conn is None else queries.reconciled(conn, schema)
    if found is not None and found.line_count:
        open_lines = found.open_lines()
        missing = found.missing(jst_date(now))
        lines.add_metric(["JPY"], len(open_lines))
        lines_amount.add_metric(["JPY"], sum(line.amount for line in open_lines))
        ledger.add_metric(["JPY"], len(missing))
        ledger_amount.add_metric(["JPY"], sum(e.amount for e in missing))
        if found.closings:
            day = max(found.closings)
            cash = queries.ledger_cash(conn, schema, day)  # type: ignore[arg-type]
            difference.add_metric(["JPY"], float(found.closings[day] - cash))
    yield from (lines, lines_amount, ledger, ledger_amount, difference)
