"""The overview: client money safeguarded against obligations, who is owed what,
overdue claims, the next closing, and 90 days of coverage and receipts.

Every figure is an API figure, read by the API's own queries and written by its
`amount`: cash, obligations, ratio and shortfall as `/v1/safeguarding`; owed to
workers, refundable to clients and in transit as the `total` of `/v1/balances`
with those prefixes; overdue claims (and those due within a week) as the
deadline gauges of `/metrics` count them, which is the `overdue` of
`/v1/receivables` (a test compares them). All of them come from one snapshot."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.queries import balances as balance_queries
from settlement.api.queries.deadlines import DUE_SOON, DeadlineExposure, payout_deadlines
from settlement.api.queries.safeguarding import safeguarding
from settlement.api.render import amount
from settlement.banking.calendar import closing_of, payment_day
from settlement.console.chart import geometry
from settlement.console.guard import SignedIn
from settlement.console.params import CurrencyParam, pick
from settlement.console.queries.daily import chart
from settlement.console.render import page
from settlement.core.deadlines import JST

router = APIRouter()
CHART_DAYS = 90
WORKERS, CLIENTS = "liabilities:worker_payable:", "liabilities:client_refundable:"
IN_TRANSIT = "liabilities:payouts_in_transit"


@router.get("/")
def overview(request: Request, _: SignedIn, db: Db, config: Config,
             currency: CurrencyParam = None) -> Response:
    now = config.now()
    today = now.astimezone(JST).date()
    with db.connection(snapshot=True) as conn:
        currencies = balance_queries.balance_currencies(conn, config.schema)
        chosen = pick(currency, currencies)
        figures = _figures(conn, config.schema, chosen, now) if chosen else None
        days = request.app.state.daily.days(conn, config.schema, now).get(chosen, {}) \
            if chosen else {}
    series = chart(days, today, CHART_DAYS)
    return page(request, "overview.html", currencies=currencies, currency=chosen,
                figures=figures, closing=_closing(today), series=series,
                geometry=geometry(series), due_soon_days=DUE_SOON.days)


def _total(conn: psycopg.Connection[Any], schema: str, currency: str,
           prefix: str | None = None, account: str | None = None) -> str:
    """The API's `total` of `/v1/balances` with this prefix or account."""
    return amount(balance_queries.balances_page(conn, schema, currency, prefix=prefix,
                                                account=account, limit=1)[3])


def _figures(conn: psycopg.Connection[Any], schema: str, currency: str,
             now: datetime) -> dict[str, Any]:
    s = safeguarding(conn, schema, currency)
    late = next((d for d in payout_deadlines(conn, schema, now) if d.currency == currency),
                DeadlineExposure(currency, 0, Decimal(0), 0, Decimal(0)))
    return {
        "cash": amount(s.cash), "obligations": amount(s.obligations),
        "coverage_ratio": None if s.coverage_ratio is None else amount(s.coverage_ratio),
        "shortfall": amount(s.shortfall),
        "owed_workers": _total(conn, schema, currency, prefix=WORKERS),
        "refundable_clients": _total(conn, schema, currency, prefix=CLIENTS),
        "in_transit": _total(conn, schema, currency, account=IN_TRANSIT),
        "overdue_count": late.overdue, "overdue_amount": amount(late.overdue_amount),
        "due_soon_count": late.due_soon, "due_soon_amount": amount(late.due_soon_amount),
    }


def _closing(today: date) -> dict[str, date]:
    closing = closing_of(today)
    return {"closing": closing, "payment_day": payment_day(closing)}
