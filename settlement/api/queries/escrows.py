"""One escrow's summary with its items."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from settlement.api.queries import schema_id


def escrow(conn: psycopg.Connection[Any], schema: str, job_id: str) -> dict[str, Any] | None:
    """The escrow summary of `job_id` with its items, or None."""
    s = schema_id(schema)
    with conn.cursor(row_factory=dict_row) as cur:
        summary = cur.execute(sql.SQL("SELECT * FROM {}.escrows WHERE job_id = %s").format(s),
                              (job_id,)).fetchone()
        if summary is None:
            return None
        items = cur.execute(sql.SQL(
            "SELECT item_id, kind, state, amount, worker_id, delivered_at FROM {}.escrow_items "
            'WHERE job_id = %s ORDER BY item_id COLLATE "C"').format(s), (job_id,)).fetchall()
    return {**summary, "items": items}
