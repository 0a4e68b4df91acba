"""One party as its latest event left it (table `parties`, SPEC §10)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from settlement.api.queries import schema_id
from settlement.api.queries.payouts import has_table


def party(conn: psycopg.Connection[Any], schema: str, party_id: str) -> dict[str, Any] | None:
    """The party's row, or None (also while the table does not exist yet)."""
    if not has_table(conn, schema, "parties"):
        return None
    query = sql.SQL("SELECT * FROM {}.parties WHERE party_id = %s").format(schema_id(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (party_id,)).fetchone()
