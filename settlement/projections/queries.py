"""Reading the read models: what the finance API (SPEC §7) will serve.

Balances "as of" an instant sum the ledger entries with `time ≤ as_of` (the
state after all events with time ≤ as_of); without `as_of` they come from the
running `balances` rows, which must equal the same sums over every entry
(`unmatched_balances` checks it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from settlement.ledger.balances import AccountBalance, TrialBalance
from settlement.projections.receivables import ReceivableRow
from settlement.projections.schema import checked_name


def _schema(schema: str) -> sql.Identifier:
    return sql.Identifier(checked_name(schema))


def balances(conn: psycopg.Connection[Any], schema: str, *, currency: str | None = None,
             as_of: datetime | None = None, prefix: str | None = None,
             account: str | None = None) -> list[AccountBalance]:
    """Balances per (account, currency), in that order, optionally filtered."""
    filters = [sql.SQL("(%(currency)s::text IS NULL OR currency = %(currency)s)"),
               sql.SQL("(%(prefix)s::text IS NULL OR starts_with(account, %(prefix)s))"),
               sql.SQL("(%(account)s::text IS NULL OR account = %(account)s)")]
    if as_of is None:
        source = sql.SQL("SELECT account, currency, debits, credits FROM {}.balances").format(
            _schema(schema))
    else:
        source = sql.SQL(
            "SELECT account, currency, "
            "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits, "
            "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits "
            "FROM {}.ledger_entries WHERE time <= %(as_of)s GROUP BY account, currency"
        ).format(_schema(schema))
    query = sql.SQL('SELECT * FROM ({}) b WHERE {} ORDER BY account COLLATE "C", currency').format(
        source, sql.SQL(" AND ").join(filters))
    params = {"currency": currency, "prefix": prefix, "account": account, "as_of": as_of}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return [AccountBalance(a, c, debits, credits) for a, c, debits, credits in cur]


def trial_balance(conn: psycopg.Connection[Any], schema: str, currency: str,
                  as_of: datetime | None = None) -> TrialBalance:
    return TrialBalance(currency, balances(conn, schema, currency=currency, as_of=as_of))


def unmatched_balances(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    """Balance rows that differ from the sums of their entries (none, if all is well)."""
    query = sql.SQL(
        "SELECT coalesce(b.account, e.account), coalesce(b.currency, e.currency) "
        "FROM {0}.balances b FULL JOIN (SELECT account, currency, "
        "  sum(amount) FILTER (WHERE side = 'debit') AS debits, "
        "  sum(amount) FILTER (WHERE side = 'credit') AS credits "
        "  FROM {0}.ledger_entries GROUP BY account, currency) e USING (account, currency) "
        "WHERE b.debits IS DISTINCT FROM coalesce(e.debits, 0) "
        "   OR b.credits IS DISTINCT FROM coalesce(e.credits, 0)").format(_schema(schema))
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(query).fetchall()


def escrow(conn: psycopg.Connection[Any], schema: str, job_id: str) -> dict[str, Any] | None:
    """The escrow summary of `job_id` with its items, or None."""
    s = _schema(schema)
    with conn.cursor(row_factory=dict_row) as cur:
        summary = cur.execute(sql.SQL("SELECT * FROM {}.escrows WHERE job_id = %s").format(s),
                              (job_id,)).fetchone()
        if summary is None:
            return None
        items = cur.execute(sql.SQL(
            "SELECT item_id, kind, state, amount, worker_id, delivered_at FROM {}.escrow_items "
            'WHERE job_id = %s ORDER BY item_id COLLATE "C"').format(s), (job_id,)).fetchall()
    return {**summary, "items": items}


def receivables(conn: psycopg.Connection[Any], schema: str, *, worker_id: str | None = None,
                client_id: str | None = None,
                as_of: datetime | None = None) -> list[tuple[ReceivableRow, bool]]:
    """Receivables (with their `paid_out` flag) per (job, item), now or as of an instant."""
    columns = ("job_id, item_id, worker_id, client_id, state, amount, net, currency, "
               "protected, delivered_at, due_by")
    if as_of is None:
        source = sql.SQL("SELECT {}, paid_out FROM {}.receivables").format(
            sql.SQL(columns), _schema(schema))
    else:
        # Payouts are a later issue: until then nothing was paid out at any instant.
        source = sql.SQL(
            "SELECT DISTINCT ON (job_id, item_id) {}, false AS paid_out "
            "FROM {}.receivables_history WHERE time <= %(as_of)s "
            "ORDER BY job_id, item_id, version DESC").format(sql.SQL(columns), _schema(schema))
    query = sql.SQL(
        "SELECT * FROM ({}) r WHERE (%(worker)s::text IS NULL OR worker_id = %(worker)s) "
        "AND (%(client)s::text IS NULL OR client_id = %(client)s) "
        'ORDER BY job_id COLLATE "C", item_id COLLATE "C"').format(source)
    params = {"worker": worker_id, "client": client_id, "as_of": as_of}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return [(ReceivableRow(*row[:-1]), bool(row[-1])) for row in cur]
