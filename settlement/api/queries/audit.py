"""The audit log (table `audit_log`): events in global order with their hashes."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from settlement.api.queries import schema_id


def audit_events(conn: psycopg.Connection[Any], schema: str, *, job_id: str | None = None,
                 after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Audit log rows in global order, after position `after`."""
    query = sql.SQL(
        "SELECT position, job_id, version, type, time, causation_id, data, hash, prev_hash "
        "FROM {}.audit_log WHERE position > %(after)s "
        "AND (%(job)s::text IS NULL OR job_id = %(job)s) ORDER BY position LIMIT %(limit)s"
    ).format(schema_id(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"after": after, "job": job_id, "limit": limit}).fetchall()
