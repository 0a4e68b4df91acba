"""An account's ledger entries in ledger order, a page at a time, with the
running balance after each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.api.queries.balances import NATURAL_BALANCE
from settlement.projections.storage import summaries

# An entry's amount signed by the account's natural side (assets: debit positive).
_SIGNED = sql.SQL(
    "CASE WHEN (starts_with(account, 'assets:') OR starts_with(account, 'expenses:')) "
    "= (side = 'debit') THEN amount ELSE -amount END")
_WINDOW = sql.SQL("(%(start)s::timestamptz IS NULL OR time >= %(start)s) "
                  "AND (%(end)s::timestamptz IS NULL OR time <= %(end)s)")


@dataclass(frozen=True, slots=True)
class EntryRow:
    position: int
    line: int
    time: datetime
    job_id: str | None
    event_type: str
    side: str
    amount: Decimal
    running_balance: Decimal


def account_currencies(conn: psycopg.Connection[Any], schema: str, account: str) -> list[str]:
    query = sql.SQL("SELECT DISTINCT currency FROM {}.balances WHERE account = %s "
                    "ORDER BY 1").format(schema_id(schema))
    with conn.cursor(row_factory=tuple_row) as cur:
        return [row[0] for row in cur.execute(query, (account,))]


def account_entries(conn: psycopg.Connection[Any], schema: str, account: str, currency: str, *,
                    start: datetime | None = None, end: datetime | None = None,
                    after: int = 0, limit: int = 100) -> list[EntryRow]:
    """The account's entries in ledger order (position, line) with `start ≤ time ≤ end`,
    after position `after`; `running_balance` is the account's balance (natural
    side) after the entry, counting every earlier entry whatever its time. A page
    never ends inside a position, so `after` = the last row's position loses nothing."""
    params = {"account": account, "currency": currency, "after": after, "limit": limit,
              "start": start, "end": end}
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(_balance_before(schema), params).fetchone()
        base = Decimal(row[0]) if row else Decimal(0)
        return [EntryRow(p, n, t, j, e, side, amt, base + running)
                for p, n, t, j, e, side, amt, running in cur.execute(_page(schema), params)]


def _balance_before(schema: str) -> sql.Composed:
    """The account's balance up to position `after`: its blocks of positions before
    the one `after` is in (`summaries`), then that block's entries up to `after`."""
    return sql.SQL(
        "SELECT coalesce(sum(v), 0) FROM ("
        "  SELECT {natural} AS v FROM {s}.balance_blocks WHERE account = %(account)s "
        "  AND currency = %(currency)s AND block < %(after)s::bigint >> {bits} UNION ALL "
        "  SELECT {signed} FROM {s}.ledger_entries WHERE account = %(account)s "
        "  AND currency = %(currency)s AND position >= (%(after)s::bigint >> {bits}) << {bits} "
        "  AND position <= %(after)s) AS z").format(
            natural=NATURAL_BALANCE, signed=_SIGNED, s=schema_id(schema),
            bits=sql.Literal(summaries.BLOCK_BITS))


def _page(schema: str) -> sql.Composed:
    # The page's last position is completed past `limit` (rarely more than one row);
    # the running sum covers every entry up to it, shown or not.
    return sql.SQL(
        "WITH last AS (SELECT max(position) AS position FROM (SELECT position "
        "  FROM {s}.ledger_entries WHERE account = %(account)s AND currency = %(currency)s "
        "  AND position > %(after)s AND {window} ORDER BY position, line LIMIT %(limit)s) p), "
        "running AS (SELECT position, line, time, job_id, event_type, side, amount, "
        "  sum({signed}) OVER (ORDER BY position, line ROWS UNBOUNDED PRECEDING) AS running "
        "  FROM {s}.ledger_entries WHERE account = %(account)s AND currency = %(currency)s "
        "  AND position > %(after)s AND position <= (SELECT position FROM last)) "
        "SELECT * FROM running WHERE {window} ORDER BY position, line").format(
            signed=_SIGNED, s=schema_id(schema), window=_WINDOW)
