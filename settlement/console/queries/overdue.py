"""Overdue claims, oldest deadline first: how many, and a page of them.

"Overdue" is the API's (`is_overdue`, the `overdue` total of
`/v1/receivables`): past `due_by` as of `now`, not paid out, with a claim. The
rows come from the same source as the API's receivables, now or as of an
instant, so the page's rows and totals agree with the API's (a test compares
them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries.receivables import FILTERS, rows_source
from settlement.projections.model.receivables import ReceivableRow

Cursor = tuple[datetime, str, str]  # (due_by, job_id, item_id) of the last row seen


@dataclass(frozen=True, slots=True)
class Overdue:
    count: int  # every matching overdue claim, all pages
    rows: list[ReceivableRow]  # this page, oldest deadline first


def overdue(conn: psycopg.Connection[Any], schema: str, currency: str, *, now: datetime,
            worker_id: str | None = None, client_id: str | None = None,
            as_of: datetime | None = None, after: Cursor | None = None,
            limit: int = 100) -> Overdue:
    """The overdue claims of `currency`: their count and the page after `after`,
    in (due_by, job_id, item_id) order. One statement, so one snapshot."""
    query = sql.SQL(
        "WITH r AS NOT MATERIALIZED (SELECT * FROM ({source}) r WHERE {filters} "
        "  AND due_by IS NOT NULL AND %(now)s > due_by AND NOT paid_out AND amount > 0), "
        "t AS (SELECT count(*) AS n FROM r), "
        "p AS (SELECT * FROM r WHERE %(after_due)s::timestamptz IS NULL "
        "  OR (due_by, job_id, item_id) > (%(after_due)s, %(after_job)s, %(after_item)s) "
        "  ORDER BY due_by, job_id, item_id LIMIT %(limit)s) "
        "SELECT t.n, p.* FROM t LEFT JOIN p ON true ORDER BY p.due_by, p.job_id, p.item_id"
    ).format(source=rows_source(schema, as_of), filters=FILTERS)
    params = {"worker": worker_id, "client": client_id, "currency": currency, "as_of": as_of,
              "now": now, "limit": limit, "after_due": after[0] if after else None,
              "after_job": after[1] if after else None,
              "after_item": after[2] if after else None}
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute(query, params).fetchall()
    rows = [ReceivableRow(*row[1:-1]) for row in found if row[1] is not None]
    return Overdue(int(found[0][0]), rows)
