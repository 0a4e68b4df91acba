"""Client-money coverage: safeguarded cash against every liability."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.api.queries.balances import (
    NATURAL_BALANCE,
    as_of_day,
    balance_source,
    day_params,
)

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
    if as_of is None:
        query = sql.SQL("SELECT cash, obligations FROM ({}) k WHERE currency = %(currency)s"
                        ).format(_kept(schema))
    else:
        # The cash account's days and the liabilities' (`summaries`), and the entries of
        # as_of's day up to it (`balances`, as for the balances as of an instant).
        query = sql.SQL(
            "WITH {day} SELECT (SELECT coalesce(sum(debits - credits), 0) FROM ("
            "  SELECT debits, credits FROM {s}.balance_days WHERE account = {cash} "
            "  AND currency = %(currency)s AND day < %(day)s UNION ALL "
            "  SELECT debits, credits FROM today WHERE account = {cash}) AS c), "
            "(SELECT coalesce(sum(balance), 0) FROM ("
            "  SELECT balance FROM {s}.balance_total_days WHERE currency = %(currency)s "
            "  AND prefix = 'liabilities:' AND day < %(day)s UNION ALL "
            "  SELECT {n} FROM today WHERE starts_with(account, 'liabilities:')) AS o)").format(
                day=as_of_day(schema), s=schema_id(schema), n=NATURAL_BALANCE,
                cash=sql.Literal("assets:safeguarded_cash"))
    params = {"currency": currency, **(day_params(as_of) if as_of else {"as_of": None})}
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query, params, prepare=False).fetchone()  # see `day_params`
    cash, obligations = (Decimal(v) for v in row) if row else (Decimal(0), Decimal(0))
    return coverage(currency, cash, obligations)


def scanned_safeguarding(conn: psycopg.Connection[Any], schema: str, currency: str,
                         as_of: datetime | None = None) -> Safeguarding:
    """`safeguarding` summed over the balances (as of: the entries): what the tests
    check the summaries by."""
    query = sql.SQL("SELECT {sums} FROM ({s}) b WHERE currency = %(currency)s").format(
        sums=_SUMS, s=balance_source(schema, as_of))
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query, {"currency": currency, "as_of": as_of}).fetchone()
    cash, obligations = (Decimal(v) for v in row) if row else (Decimal(0), Decimal(0))
    return coverage(currency, cash, obligations)


def safeguarding_by_currency(conn: psycopg.Connection[Any], schema: str) -> list[Safeguarding]:
    """The current coverage of every currency (from the summary rows and the cash
    balance: a few rows per currency, not the accounts)."""
    query = sql.SQL("SELECT currency, cash, obligations FROM ({}) k ORDER BY currency"
                    ).format(_kept(schema))
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(query).fetchall()
    return [coverage(currency, Decimal(cash), Decimal(obligations))
            for currency, cash, obligations in rows]


def _kept(schema: str) -> sql.Composed:
    """(currency, cash, obligations) now, per currency with balances: the cash
    account's row and the `liabilities:` summary row (`summaries`), not a sum
    over the accounts."""
    return sql.SQL(
        "SELECT t.currency, coalesce((SELECT {n} FROM {s}.balances AS c "
        "  WHERE c.account = 'assets:safeguarded_cash' AND c.currency = t.currency), 0) AS cash, "
        "coalesce(l.balance, 0) AS obligations FROM {s}.balance_totals AS t "
        "LEFT JOIN {s}.balance_totals AS l ON l.currency = t.currency "
        "AND l.prefix = 'liabilities:' WHERE t.prefix = ''").format(
            n=NATURAL_BALANCE, s=schema_id(schema))


def coverage(currency: str, cash: Decimal, obligations: Decimal) -> Safeguarding:
    ratio = ((cash / obligations).quantize(COVERAGE_PLACES, rounding=ROUND_DOWN)
             if obligations > 0 else None)
    return Safeguarding(currency, cash, obligations, ratio, max(obligations - cash, Decimal(0)))
