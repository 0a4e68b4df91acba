"""Invoices (table `invoices`, written by the invoices projection) by number."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from settlement.api.queries.payouts import has_table
from settlement.projections.storage.schema import checked_name

_COLUMNS = ("number, party_id, period, issued_on, corrects, total, tax, currency, "
            "document_sha256, time")


def invoices(conn: psycopg.Connection[Any], schema: str, *, party_id: str | None = None,
             month: str | None = None, after: str | None = None,
             limit: int = 100) -> list[dict[str, Any]]:
    """Invoices by number, after `after`, optionally of one party and invoiced
    month; none while the table does not exist yet."""
    if not has_table(conn, schema, "invoices"):
        return []
    query = sql.SQL(
        "SELECT " + _COLUMNS + " FROM {}.invoices "
        "WHERE (%(party)s::text IS NULL OR party_id = %(party)s) "
        "AND (%(month)s::text IS NULL OR period = %(month)s) "
        "AND (%(after)s::text IS NULL OR number > %(after)s) "
        "ORDER BY number LIMIT %(limit)s").format(sql.Identifier(checked_name(schema)))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"party": party_id, "month": month, "after": after,
                                   "limit": limit}).fetchall()


def invoice(conn: psycopg.Connection[Any], schema: str,
            number: str) -> dict[str, Any] | None:
    """The invoice with its document (the event's data) and the number of the
    correction that cites it, if any; None if there is none."""
    if not has_table(conn, schema, "invoices"):
        return None
    query = sql.SQL(
        "SELECT " + _COLUMNS + ", document, (SELECT min(c.number) FROM {s}.invoices AS c "
        "WHERE c.corrects = i.number) AS corrected_by FROM {s}.invoices AS i "
        "WHERE number = %s").format(s=sql.Identifier(checked_name(schema)))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (number,)).fetchone()
