"""Reading the read models: what the finance API (SPEC §7) will serve.

Balances "as of" an instant sum the ledger entries with `time ≤ as_of` (the
state after all events with time ≤ as_of); without `as_of` they come from the
running `balances` rows, which must equal the same sums over every entry
(`unmatched_balances` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from settlement.ledger.balances import AccountBalance, TrialBalance
from settlement.projections.model.receivables import ReceivableRow
from settlement.projections.storage.schema import checked_name


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


# The finance API (settlement.api) pages through these: every list is ordered by
# a key that `after` continues from, and `limit` bounds each page. Text keys are
# ordered by the database's collation (not "C"), so the primary keys serve the
# order and a page reads `limit` rows, not the whole table.

_SIGNED = sql.SQL(
    "CASE WHEN starts_with(account, 'assets:') = (side = 'debit') THEN amount ELSE -amount END")
_NATURAL = sql.SQL(
    "CASE WHEN starts_with(account, 'assets:') THEN debits - credits ELSE credits - debits END")


def _balance_source(schema: str, as_of: datetime | None) -> sql.Composed:
    if as_of is None:
        return sql.SQL("SELECT account, currency, debits, credits FROM {}.balances").format(
            _schema(schema))
    return sql.SQL(
        "SELECT account, currency, "
        "coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits, "
        "coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits "
        "FROM {}.ledger_entries WHERE time <= %(as_of)s GROUP BY account, currency"
    ).format(_schema(schema))


_BALANCE_FILTERS = sql.SQL(
    "(%(currency)s::text IS NULL OR currency = %(currency)s) "
    "AND (%(prefix)s::text IS NULL OR starts_with(account, %(prefix)s)) "
    "AND (%(account)s::text IS NULL OR account = %(account)s)")


def balance_currencies(conn: psycopg.Connection[Any], schema: str, *,
                       as_of: datetime | None = None, prefix: str | None = None,
                       account: str | None = None) -> list[str]:
    """The currencies of the balances that match the filters, sorted."""
    query = sql.SQL("SELECT DISTINCT currency FROM ({}) b WHERE {} ORDER BY 1").format(
        _balance_source(schema, as_of), _BALANCE_FILTERS)
    params = {"currency": None, "prefix": prefix, "account": account, "as_of": as_of}
    with conn.cursor(row_factory=tuple_row) as cur:
        return [row[0] for row in cur.execute(query, params)]


def balances_page(conn: psycopg.Connection[Any], schema: str, currency: str, *,
                  as_of: datetime | None = None, prefix: str | None = None,
                  account: str | None = None, after: str | None = None,
                  limit: int = 100) -> tuple[list[AccountBalance], Decimal, Decimal, Decimal]:
    """One page of balances of `currency` (accounts after `after`, in code order),
    and the totals over every matching account: debits, credits and the sum of
    the balances on their natural sides."""
    # One statement (one snapshot, one round trip): the totals row joined with the page.
    query = sql.SQL(
        "WITH b AS NOT MATERIALIZED (SELECT * FROM ({source}) b WHERE {filters}), "
        "t AS (SELECT coalesce(sum(debits), 0) AS d, coalesce(sum(credits), 0) AS c, "
        "  coalesce(sum({natural}), 0) AS n FROM b), "
        "p AS (SELECT account, currency, debits, credits FROM b "
        "  WHERE %(after)s::text IS NULL OR account > %(after)s "
        "  ORDER BY account LIMIT %(limit)s) "
        "SELECT t.d, t.c, t.n, p.* FROM t LEFT JOIN p ON true ORDER BY p.account"
    ).format(source=_balance_source(schema, as_of), filters=_BALANCE_FILTERS, natural=_NATURAL)
    params = {"currency": currency, "prefix": prefix, "account": account, "as_of": as_of,
              "after": after, "limit": limit}
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query, params).fetchall()
    debits, credits, total = found[0][:3]
    rows = [AccountBalance(a, c, d, cr) for *_, a, c, d, cr in found if a is not None]
    return rows, Decimal(debits), Decimal(credits), Decimal(total)


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
                    "ORDER BY 1").format(_schema(schema))
    with conn.cursor(row_factory=tuple_row) as cur:
        return [row[0] for row in cur.execute(query, (account,))]


def account_entries(conn: psycopg.Connection[Any], schema: str, account: str, currency: str, *,
                    start: datetime | None = None, end: datetime | None = None,
                    after: int = 0, limit: int = 100) -> list[EntryRow]:
    """The account's entries in ledger order (position, line) with `start ≤ time ≤ end`,
    after position `after`; `running_balance` is the account's balance (natural
    side) after the entry, counting every earlier entry whatever its time. A page
    never ends inside a position, so `after` = the last row's position loses nothing."""
    s_ = _schema(schema)
    params = {"account": account, "currency": currency, "after": after, "limit": limit,
              "start": start, "end": end}
    base_query = sql.SQL(
        "SELECT coalesce(sum({}), 0) FROM {}.ledger_entries WHERE account = %(account)s "
        "AND currency = %(currency)s AND position <= %(after)s").format(_SIGNED, s_)
    # The page's last position is completed past `limit` (rarely more than one row);
    # the running sum covers every entry up to it, shown or not.
    window = sql.SQL("(%(start)s::timestamptz IS NULL OR time >= %(start)s) "
                     "AND (%(end)s::timestamptz IS NULL OR time <= %(end)s)")
    page_query = sql.SQL(
        "WITH last AS (SELECT max(position) AS position FROM (SELECT position "
        "  FROM {s}.ledger_entries WHERE account = %(account)s AND currency = %(currency)s "
        "  AND position > %(after)s AND {window} ORDER BY position, line LIMIT %(limit)s) p), "
        "running AS (SELECT position, line, time, job_id, event_type, side, amount, "
        "  sum({signed}) OVER (ORDER BY position, line ROWS UNBOUNDED PRECEDING) AS running "
        "  FROM {s}.ledger_entries WHERE account = %(account)s AND currency = %(currency)s "
        "  AND position > %(after)s AND position <= (SELECT position FROM last)) "
        "SELECT * FROM running WHERE {window} ORDER BY position, line").format(
            signed=_SIGNED, s=s_, window=window)
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(base_query, params).fetchone()
        base = Decimal(row[0]) if row else Decimal(0)
        return [EntryRow(p, n, t, j, e, side, amt, base + running)
                for p, n, t, j, e, side, amt, running in cur.execute(page_query, params)]


def receivable_currencies(conn: psycopg.Connection[Any], schema: str, *,
                          worker_id: str | None = None, client_id: str | None = None,
                          as_of: datetime | None = None) -> list[str]:
    source = _receivables_source(schema, as_of)
    query = sql.SQL("SELECT DISTINCT currency FROM ({}) r WHERE {} ORDER BY 1").format(
        source, _RECEIVABLE_FILTERS)
    params = {"worker": worker_id, "client": client_id, "as_of": as_of, "currency": None}
    with conn.cursor(row_factory=tuple_row) as cur:
        return [row[0] for row in cur.execute(query, params)]


_RECEIVABLE_COLUMNS = sql.SQL(
    "job_id, item_id, worker_id, client_id, state, amount, net, currency, protected, "
    "delivered_at, due_by")
_RECEIVABLE_FILTERS = sql.SQL(
    "(%(worker)s::text IS NULL OR worker_id = %(worker)s) "
    "AND (%(client)s::text IS NULL OR client_id = %(client)s) "
    "AND (%(currency)s::text IS NULL OR currency = %(currency)s)")


def _receivables_source(schema: str, as_of: datetime | None) -> sql.Composed:
    if as_of is None:
        return sql.SQL("SELECT {}, paid_out FROM {}.receivables").format(
            _RECEIVABLE_COLUMNS, _schema(schema))
    # As of T, an item is paid out when a worker payout initiated by T names it and
    # had not failed by T (the payout events in the audit log, as `paid_out` is now).
    return sql.SQL(
        "WITH failed AS (SELECT data->>'payout_id' AS payout_id FROM {s}.audit_log "
        "  WHERE type = 'settlement.payout_failed' AND time <= %(as_of)s), "
        "paid AS (SELECT DISTINCT i->>'job_id' AS job_id, i->>'item_id' AS item_id "
        "  FROM {s}.audit_log a, jsonb_array_elements(a.data->'items') AS i "
        "  WHERE a.type = 'settlement.payout_initiated' AND a.time <= %(as_of)s "
        "  AND a.data->>'party_type' = 'worker' "
        "  AND NOT EXISTS (SELECT 1 FROM failed f WHERE f.payout_id = a.data->>'payout_id')) "
        "SELECT h.*, p.job_id IS NOT NULL AS paid_out "
        "FROM (SELECT DISTINCT ON (job_id, item_id) {c} "
        "  FROM {s}.receivables_history WHERE time <= %(as_of)s "
        "  ORDER BY job_id, item_id, version DESC) h "
        "LEFT JOIN paid p ON p.job_id = h.job_id AND p.item_id = h.item_id").format(
            c=_RECEIVABLE_COLUMNS, s=_schema(schema))


@dataclass(frozen=True, slots=True)
class ReceivableTotals:
    protected: Decimal  # Σ claims held in escrow or payable
    unprotected: Decimal  # Σ claims contracted but not funded
    payable: Decimal  # Σ net owed on released claims not paid out (= worker_payable)
    overdue: Decimal  # Σ claims past their deadline, unpaid


def receivables_page(conn: psycopg.Connection[Any], schema: str, currency: str, *, now: datetime,
                     worker_id: str | None = None, client_id: str | None = None,
                     as_of: datetime | None = None, after: tuple[str, str] | None = None,
                     limit: int = 100) -> tuple[list[tuple[ReceivableRow, bool]],
                                                ReceivableTotals]:
    """One page of receivables of `currency` (after the (job_id, item_id) `after`) and
    the totals over every matching row; `now` decides what is overdue."""
    from settlement.projections.model.receivables import PAYABLE_STATES

    params = {"worker": worker_id, "client": client_id, "currency": currency, "as_of": as_of,
              "after_job": after[0] if after else None, "after_item": after[1] if after else None,
              "limit": limit, "now": now, "payable": list(PAYABLE_STATES)}
    # One statement (one snapshot, one round trip): the totals row joined with the page.
    query = sql.SQL(
        "WITH r AS NOT MATERIALIZED (SELECT * FROM ({source}) r WHERE {filters}), "
        "t AS (SELECT coalesce(sum(amount) FILTER (WHERE protected), 0) AS protected, "
        "  coalesce(sum(amount) FILTER (WHERE NOT protected), 0) AS unprotected, "
        "  coalesce(sum(net) FILTER (WHERE state = ANY(%(payable)s) AND NOT paid_out), 0) "
        "    AS payable, "
        "  coalesce(sum(amount) FILTER (WHERE due_by IS NOT NULL AND %(now)s > due_by "
        "    AND NOT paid_out AND amount > 0), 0) AS overdue FROM r), "
        "p AS (SELECT * FROM r WHERE %(after_job)s::text IS NULL OR "
        "  (job_id, item_id) > (%(after_job)s, %(after_item)s) "
        "  ORDER BY job_id, item_id LIMIT %(limit)s) "
        "SELECT t.*, p.* FROM t LEFT JOIN p ON true ORDER BY p.job_id, p.item_id"
    ).format(source=_receivables_source(schema, as_of), filters=_RECEIVABLE_FILTERS)
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query, params).fetchall()
    totals = ReceivableTotals(*(Decimal(v) for v in found[0][:4]))
    rows = [(ReceivableRow(*row[4:-1]), bool(row[-1])) for row in found if row[4] is not None]
    return rows, totals


@dataclass(frozen=True, slots=True)
class Safeguarding:
    currency: str
    cash: Decimal  # assets:safeguarded_cash
    obligations: Decimal  # Σ liabilities: what is owed to clients, workers and tax
    coverage_ratio: Decimal | None  # cash / obligations (None when nothing is owed)
    shortfall: Decimal  # max(obligations − cash, 0)


COVERAGE_PLACES = Decimal("0.000001")


def safeguarding(conn: psycopg.Connection[Any], schema: str, currency: str,
                 as_of: datetime | None = None) -> Safeguarding:
    """Client-money coverage of `currency`: safeguarded cash against every liability.
    The ratio is rounded down to 6 places, so it never overstates the coverage."""
    query = sql.SQL(
        "SELECT coalesce(sum({n}) FILTER (WHERE account = 'assets:safeguarded_cash'), 0), "
        "coalesce(sum({n}) FILTER (WHERE starts_with(account, 'liabilities:')), 0) "
        "FROM ({s}) b WHERE currency = %(currency)s").format(
            n=_NATURAL, s=_balance_source(schema, as_of))
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query, {"currency": currency, "as_of": as_of}).fetchone()
    cash, obligations = (Decimal(v) for v in row) if row else (Decimal(0), Decimal(0))
    ratio = ((cash / obligations).quantize(COVERAGE_PLACES, rounding=ROUND_DOWN)
             if obligations > 0 else None)
    return Safeguarding(currency, cash, obligations, ratio, max(obligations - cash, Decimal(0)))


def audit_events(conn: psycopg.Connection[Any], schema: str, *, job_id: str | None = None,
                 after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Audit log rows in global order, after position `after`."""
    query = sql.SQL(
        "SELECT position, job_id, version, type, time, causation_id, data, hash, prev_hash "
        "FROM {}.audit_log WHERE position > %(after)s "
        "AND (%(job)s::text IS NULL OR job_id = %(job)s) ORDER BY position LIMIT %(limit)s"
    ).format(_schema(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"after": after, "job": job_id, "limit": limit}).fetchall()


def has_table(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass(%s)", (f"{checked_name(schema)}.{table}",)).fetchone()
    return row is not None and row[0] is not None


def payouts(conn: psycopg.Connection[Any], schema: str, *, status: str | None = None,
            after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Payouts (table `payouts`, written by the payouts projection) by id; none
    while the table does not exist yet."""
    if not has_table(conn, schema, "payouts"):
        return []
    query = sql.SQL(
        "SELECT payout_id, party_type, party_id, currency, amount, status, items "
        "FROM {}.payouts WHERE (%(status)s::text IS NULL OR status = %(status)s) "
        "AND (%(after)s::text IS NULL OR payout_id > %(after)s) "
        "ORDER BY payout_id LIMIT %(limit)s").format(_schema(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"status": status, "after": after, "limit": limit}).fetchall()
