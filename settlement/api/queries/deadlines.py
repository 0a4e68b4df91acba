"""Workers' claims near or past their payout deadline (the Freelance Act's 60
days from delivery, `due_by`), per currency: what the deadline alerts watch.

A claim counts as the API's `overdue` does: a deadline, a claim (`amount > 0`)
and not paid out. The partial index `receivables (due_by) WHERE NOT paid_out AND
amount > 0` holds exactly those claims, so a scrape reads open claims only,
never the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id

DUE_SOON = timedelta(days=7)  # a deadline this close is a warning


@dataclass(frozen=True, slots=True)
class DeadlineExposure:
    currency: str
    due_soon: int  # unpaid claims whose deadline falls within DUE_SOON
    due_soon_amount: Decimal
    overdue: int  # unpaid claims past their deadline
    overdue_amount: Decimal


def deadlines_query(schema: str) -> sql.Composed:
    """Per currency: claims due within DUE_SOON (count, sum), and overdue (count, sum)."""
    return sql.SQL(
        "SELECT currency, count(*) FILTER (WHERE due_by >= %(now)s), "
        "coalesce(sum(amount) FILTER (WHERE due_by >= %(now)s), 0), "
        "count(*) FILTER (WHERE due_by < %(now)s), "
        "coalesce(sum(amount) FILTER (WHERE due_by < %(now)s), 0) "
        "FROM {}.receivables WHERE NOT paid_out AND amount > 0 AND due_by <= %(horizon)s "
        "GROUP BY currency ORDER BY currency").format(schema_id(schema))


def payout_deadlines(conn: psycopg.Connection[Any], schema: str,
                     now: datetime) -> list[DeadlineExposure]:
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(deadlines_query(schema),
                           {"now": now, "horizon": now + DUE_SOON}).fetchall()
    return [DeadlineExposure(currency, int(soon), Decimal(soon_amount), int(late),
                             Decimal(late_amount))
            for currency, soon, soon_amount, late, late_amount in rows]
