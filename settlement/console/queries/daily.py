"""The overview's 90-day chart: per currency and day in Japan, safeguarded cash
and obligations at the day's end (so the coverage ratio) and the money received
that day (debits to `assets:safeguarded_cash`, the day's volume).

Summing every ledger entry per day on each request would read the whole table
(a second at 1,000,000 entries), so `DailyTotals` keeps the sums of the days
that ended more than `GRACE` ago and reads only the entries since then (the
`time` index). Before using the kept sums it checks, in the same snapshot, that
kept + recent = the running balances of the `balances` table (cash, obligations,
cash debits, per currency); anything stored since for an old day (an event
arriving late, a rebuilt schema) breaks the equality and the sums are read
again in full. Entries that leave all three sums unchanged are, with today's
postings, events that leave every day's figures unchanged too (SPEC §6: no
liability grows without a cash debit), so the check is complete for the chart.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.api.queries.safeguarding import COVERAGE_PLACES
from settlement.core.deadlines import JST

GRACE = timedelta(days=1)  # days that ended less than this ago are read on every request
CASH = "assets:safeguarded_cash"
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Sums:
    cash: Decimal = ZERO  # change of the cash balance (debits − credits)
    owed: Decimal = ZERO  # change of Σ liabilities (credits − debits)
    received: Decimal = ZERO  # debits to cash

    def __add__(self, other: Sums) -> Sums:
        return Sums(self.cash + other.cash, self.owed + other.owed,
                    self.received + other.received)


@dataclass(frozen=True, slots=True)
class ChartDay:
    day: date
    cash: Decimal  # at the day's end
    obligations: Decimal  # at the day's end
    coverage_ratio: Decimal | None  # as `/v1/safeguarding` rounds it
    received: Decimal  # during the day


Days = dict[str, dict[date, Sums]]  # currency → day in Japan → sums


def _day_sums(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT currency, (time AT TIME ZONE 'Asia/Tokyo')::date, "
        "coalesce(sum(CASE WHEN side = 'debit' THEN amount ELSE -amount END) "
        "  FILTER (WHERE account = %(cash)s), 0), "
        "coalesce(sum(CASE WHEN side = 'credit' THEN amount ELSE -amount END) "
        "  FILTER (WHERE starts_with(account, 'liabilities:')), 0), "
        "coalesce(sum(amount) FILTER (WHERE account = %(cash)s AND side = 'debit'), 0) "
        "FROM {}.ledger_entries "
        "WHERE (%(from)s::timestamptz IS NULL OR time >= %(from)s) "
        "AND (%(to)s::timestamptz IS NULL OR time < %(to)s) GROUP BY 1, 2"
    ).format(schema_id(schema))


def _balance_totals(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT currency, coalesce(sum(debits - credits) FILTER (WHERE account = %(cash)s), 0), "
        "coalesce(sum(credits - debits) FILTER (WHERE starts_with(account, 'liabilities:')), 0), "
        "coalesce(sum(debits) FILTER (WHERE account = %(cash)s), 0) "
        "FROM {}.balances GROUP BY currency").format(schema_id(schema))


def read_days(conn: psycopg.Connection[Any], schema: str, start: datetime | None,
              end: datetime | None) -> Days:
    """Sums per currency and day of the entries with start ≤ time < end."""
    days: Days = defaultdict(dict)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_day_sums(schema), {"cash": CASH, "from": start, "to": end})
        for currency, day, cash, owed, received in cur:
            days[currency][day] = Sums(cash, owed, received)
    return days


def balance_totals(conn: psycopg.Connection[Any], schema: str) -> dict[str, Sums]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_balance_totals(schema), {"cash": CASH})
        return {currency: Sums(cash, owed, received) for currency, cash, owed, received in cur}


def _total(days: dict[date, Sums]) -> Sums:
    return sum(days.values(), Sums())


class DailyTotals:
    """Daily sums of the days that ended before `GRACE` ago, kept between requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, Days] = {}  # schema → sums of the days before `_until[schema]`
        self._until: dict[str, datetime] = {}

    def days(self, conn: psycopg.Connection[Any], schema: str, now: datetime) -> Days:
        """Every day's sums, per currency. `conn` must be in a snapshot transaction,
        so the recent entries and the balances are read from the same state."""
        until = datetime.combine((now - GRACE).astimezone(JST).date(), datetime.min.time(), JST)
        with self._lock:
            kept = self._kept.get(schema)
            if kept is None or self._until[schema] > until:
                kept = self._keep(conn, schema, None, until, {})
            elif self._until[schema] < until:  # days ended since: fold them in
                kept = self._keep(conn, schema, self._until[schema], until, kept)
            recent = read_days(conn, schema, until, None)
            if not self._matches(kept, recent, balance_totals(conn, schema)):
                kept = self._keep(conn, schema, None, until, {})
        return _merge(kept, recent)

    def _keep(self, conn: psycopg.Connection[Any], schema: str, start: datetime | None,
              until: datetime, kept: Days) -> Days:
        merged = _merge(kept, read_days(conn, schema, start, until))
        self._kept[schema], self._until[schema] = merged, until
        return merged

    @staticmethod
    def _matches(kept: Days, recent: Days, expected: dict[str, Sums]) -> bool:
        currencies = set(kept) | set(recent) | set(expected)
        return all(_total(kept.get(c, {})) + _total(recent.get(c, {})) == expected.get(c, Sums())
                   for c in currencies)


def _merge(a: Days, b: Days) -> Days:
    out: Days = {currency: dict(days) for currency, days in a.items()}
    for currency, days in b.items():
        mine = out.setdefault(currency, {})
        for day, sums in days.items():
            mine[day] = mine.get(day, Sums()) + sums
    return out


def chart(days: dict[date, Sums], last: date, span_days: int) -> list[ChartDay]:
    """The `span_days` days up to `last`: each day's end balances and receipts."""
    first = last - timedelta(days=span_days - 1)
    running = _total({d: s for d, s in days.items() if d < first})
    out = []
    for n in range(span_days):
        day = first + timedelta(days=n)
        today = days.get(day, Sums())
        running = running + today
        ratio = ((running.cash / running.owed).quantize(COVERAGE_PLACES, rounding=ROUND_DOWN)
                 if running.owed > 0 else None)
        out.append(ChartDay(day, running.cash, running.owed, ratio, today.received))
    return out
