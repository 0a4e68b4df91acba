"""Client-money coverage: safeguarded cash against every liability."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries.balances import NATURAL_BALANCE, balance_source

COVERAGE_PLACES = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Safeguarding:
    currency: str
    cash: Decimal  # assets:safeguarded_cash
    obligations: Decimal  # Σ liabilities: what is owed to clients, workers and tax
    coverage_ratio: Decimal | None  # cash / obligations (None when nothing is owed)
    shortfall: Decimal  # max(obligations − cash, 0)


_SUMS = sql.SQL(
    "coalesce(sum({n}) FILTER (WHERE account = 'assets:safeguarded_cash'), 0), "
    "coalesce(sum({n}) FILTER (WHERE starts_with(account, 'liabilities:')), 0)").format(
        n=NATURAL_BALANCE)


def safeguarding(conn: psycopg.Connection[Any], schema: str, currency: str,
                 as_of: datetime | None = None) -> Safeguarding:
    """Client-money coverage of `currency`: safeguarded cash against every liability.
    The ratio is rounded down to 6 places, so it never overstates the coverage."""
    query = sql.SQL("SELECT {sums} FROM ({s}) b WHERE currency = %(currency)s").format(
        sums=_SUMS, s=balance_source(schema, as_of))
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query, {"currency": currency, "as_of": as_of}).fetchone()
    cash, obligations = (Decimal(v) for v in row) if row else (Decimal(0), Decimal(0))
    return coverage(currency, cash, obligations)


def safeguarding_by_currency(conn: psycopg.Connection[Any], schema: str) -> list[Safeguarding]:
    """The current coverage of every currency (from the running balances: one row
    per account and currency, not the entries)."""
    query = sql.SQL("SELECT currency, {sums} FROM ({s}) b GROUP BY currency "
                    "ORDER BY currency").format(sums=_SUMS, s=balance_source(schema, None))
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(query).fetchall()
    return [coverage(currency, Decimal(cash), Decimal(obligations))
            for currency, cash, obligations in rows]


def coverage(currency: str, cash: Decimal, obligations: Decimal) -> Safeguarding:
    ratio = ((cash / obligations).quantize(COVERAGE_PLACES, rounding=ROUND_DOWN)
             if obligations > 0 else None)
    return Safeguarding(currency, cash, obligations, ratio, max(obligations - cash, Decimal(0)))
