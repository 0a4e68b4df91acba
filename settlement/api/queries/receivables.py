"""Workers' receivables per (job, item) with their `paid_out` flag, now or as of
an instant: whole, or a page of one currency with the totals over every
matching row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.projections.model.receivables import PAYABLE_STATES, ReceivableRow

_COLUMNS = sql.SQL(
    "job_id, item_id, worker_id, client_id, state, amount, net, currency, protected, "
    "delivered_at, due_by")
FILTERS = sql.SQL(
    "(%(worker)s::text IS NULL OR worker_id = %(worker)s) "
    "AND (%(client)s::text IS NULL OR client_id = %(client)s) "
    "AND (%(currency)s::text IS NULL OR currency = %(currency)s)")


@dataclass(frozen=True, slots=True)
class ReceivableTotals:
    protected: Decimal  # Σ claims held in escrow or payable
    unprotected: Decimal  # Σ claims contracted but not funded
    payable: Decimal  # Σ net owed on released claims not paid out (= worker_payable)
    overdue: Decimal  # Σ claims past their deadline, unpaid


def receivables(conn: psycopg.Connection[Any], schema: str, *, worker_id: str | None = None,
                client_id: str | None = None,
                as_of: datetime | None = None) -> list[tuple[ReceivableRow, bool]]:
    """Receivables (with their `paid_out` flag) per (job, item), now or as of an instant."""
    if as_of is None:
        source = sql.SQL("SELECT {}, paid_out FROM {}.receivables").format(
            _COLUMNS, schema_id(schema))
    else:
        # Payouts are a later issue: until then nothing was paid out at any instant.
        source = sql.SQL(
            "SELECT DISTINCT ON (job_id, item_id) {}, false AS paid_out "
            "FROM {}.receivables_history WHERE time <= %(as_of)s "
            "ORDER BY job_id, item_id, version DESC").format(_COLUMNS, schema_id(schema))
    query = sql.SQL(
        "SELECT * FROM ({}) r WHERE (%(worker)s::text IS NULL OR worker_id = %(worker)s) "
        "AND (%(client)s::text IS NULL OR client_id = %(client)s) "
        'ORDER BY job_id COLLATE "C", item_id COLLATE "C"').format(source)
    params = {"worker": worker_id, "client": client_id, "as_of": as_of}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return [(ReceivableRow(*row[:-1]), bool(row[-1])) for row in cur]


def receivable_currencies(conn: psycopg.Connection[Any], schema: str, *,
                          worker_id: str | None = None, client_id: str | None = None,
                          as_of: datetime | None = None) -> list[str]:
    if as_of is None and not (worker_id and client_id):
        scope, party = _scope({"worker": worker_id, "client": client_id})
        kept = sql.SQL("SELECT currency FROM {}.receivable_totals WHERE scope = %s "
                       "AND party_id = %s ORDER BY 1").format(schema_id(schema))
        with conn.cursor(row_factory=tuple_row) as cur:
            return [row[0] for row in cur.execute(kept, (scope, party))]
    query = sql.SQL("SELECT DISTINCT currency FROM ({}) r WHERE {} ORDER BY 1").format(
        rows_source(schema, as_of), FILTERS)
    params = {"worker": worker_id, "client": client_id, "as_of": as_of, "currency": None}
    with conn.cursor(row_factory=tuple_row) as cur:
        return [row[0] for row in cur.execute(query, params)]


def receivables_page(conn: psycopg.Connection[Any], schema: str, currency: str, *, now: datetime,
                     worker_id: str | None = None, client_id: str | None = None,
                     as_of: datetime | None = None, after: tuple[str, str] | None = None,
                     limit: int = 100) -> tuple[list[tuple[ReceivableRow, bool]],
                                                ReceivableTotals]:
    """One page of receivables of `currency` (after the (job_id, item_id) `after`) and
    the totals over every matching row; `now` decides what is overdue."""
    params = {"worker": worker_id, "client": client_id, "currency": currency, "as_of": as_of,
              "after_job": after[0] if after else None, "after_item": after[1] if after else None,
              "limit": limit, "now": now, "payable": list(PAYABLE_STATES)}
    if as_of is None and not (worker_id and client_id):
        return _kept_page(conn, schema, params)
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
    ).format(source=rows_source(schema, as_of), filters=FILTERS)
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query, params).fetchall()
    totals = ReceivableTotals(*(Decimal(v) for v in found[0][:4]))
    rows = [(ReceivableRow(*row[4:-1]), bool(row[-1])) for row in found if row[4] is not None]
    return rows, totals


def _scope(params: dict[str, Any]) -> tuple[str, str]:
    """The `receivable_totals` row of the filters: a worker's, a client's, or all."""
    if params["worker"]:
        return "worker", params["worker"]
    if params["client"]:
        return "client", params["client"]
    return "all", ""


def _kept_page(conn: psycopg.Connection[Any], schema: str, params: dict[str, Any],
               ) -> tuple[list[tuple[ReceivableRow, bool]], ReceivableTotals]:
    """`receivables_page` now, of everyone, one worker or one client: the totals from
    the summary row the projector keeps (`summaries`) and, for `overdue` (which
    moves with `now`), the open claims past their deadline (a partial index of
    unpaid claims); the page an index walk in (job, item) order."""
    params = {**params, "scope": _scope(params)[0], "party": _scope(params)[1]}
    query = sql.SQL(
        "WITH t AS (SELECT protected, unprotected, payable FROM {s}.receivable_totals "
        "  WHERE currency = %(currency)s AND scope = %(scope)s AND party_id = %(party)s), "
        "o AS (SELECT coalesce(sum(amount), 0) AS overdue FROM {s}.receivables "
        "  WHERE NOT paid_out AND amount > 0 AND due_by < %(now)s AND {filters}), "
        "p AS (SELECT {c}, paid_out FROM {s}.receivables WHERE {filters} "
        "  AND (%(after_job)s::text IS NULL OR "
        "  (job_id, item_id) > (%(after_job)s, %(after_item)s)) "
        "  ORDER BY job_id, item_id LIMIT %(limit)s) "
        "SELECT coalesce(t.protected, 0), coalesce(t.unprotected, 0), coalesce(t.payable, 0), "
        "o.overdue, p.* FROM o LEFT JOIN t ON true LEFT JOIN p ON true "
        "ORDER BY p.job_id, p.item_id").format(s=schema_id(schema), c=_COLUMNS, filters=FILTERS)
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query, params).fetchall()
    totals = ReceivableTotals(*(Decimal(v) for v in found[0][:4]))
    rows = [(ReceivableRow(*row[4:-1]), bool(row[-1])) for row in found if row[4] is not None]
    return rows, totals


def rows_source(schema: str, as_of: datetime | None) -> sql.Composed:
    """The receivables rows (live, or as of an instant) that `FILTERS` narrow; the
    console's overdue list reads the same source, so it cannot disagree with the API."""
    if as_of is None:
        return sql.SQL("SELECT {}, paid_out FROM {}.receivables").format(
            _COLUMNS, schema_id(schema))
    # As of T, an item is paid out when a worker payout initiated by T names it and
    # had not failed (nor come back from the bank) by T (the payout events in the
    # audit log, as `paid_out` is now).
    return sql.SQL(
        "WITH failed AS (SELECT data->>'payout_id' AS payout_id FROM {s}.audit_log "
        "  WHERE type IN ('settlement.payout_failed', 'settlement.payout_returned') "
        "  AND time <= %(as_of)s), "
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
            c=_COLUMNS, s=schema_id(schema))
