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
    query = sql.SQL(
        "SELECT payout_id, party_type, party_id, currency, amount, status, items "
        "FROM {}.payouts WHERE (%(status)s::text IS NULL OR status = %(status)s) "
        "AND (%(after)s::text IS NULL OR payout_id > %(after)s) "
        "ORDER BY payout_id LIMIT %(limit)s").format(schema_id(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"status": status, "after": after, "limit": limit}).fetchall()
