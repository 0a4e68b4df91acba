"""Payouts (table `payouts`, written by the payouts projection) by id."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from settlement.api.queries import schema_id
from settlement.projections.storage.schema import checked_name


def has_table(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass(%s)", (f"{checked_name(schema)}.{table}",)).fetchone()
    return row is not None and row[0] is not None


def payouts(conn: psycopg.Connection[Any], schema: str, *, status: str | None = None,
            after: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Payouts by id, after `after`, optionally of one status; none while the table
    does not exist yet."""
    if not has_table(conn, schema, "payouts"):
        return []
    # The transfer fee is the payout_initiated event's (audit log, by payout id).
    query = sql.SQL(
        "SELECT p.payout_id, p.party_type, p.party_id, p.currency, p.amount, p.status, "
        "p.items, coalesce((a.data->'transfer_fee'->>'amount')::numeric, 0) AS transfer_fee "
        "FROM {s}.payouts AS p LEFT JOIN {s}.audit_log AS a ON a.job_id IS NULL "
        "AND a.data->>'payout_id' = p.payout_id AND a.type = 'settlement.payout_initiated' "
        "WHERE (%(status)s::text IS NULL OR p.status = %(status)s) "
        "AND (%(after)s::text IS NULL OR p.payout_id > %(after)s) "
        "ORDER BY p.payout_id LIMIT %(limit)s").format(s=schema_id(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"status": status, "after": after, "limit": limit}).fetchall()
