"""A canonical digest of a projections schema: equal digests, equal read models.

sha256 over every digested table (see `schema.TABLES`) in a fixed order, each
row as PostgreSQL's text form of the row, rows in primary-key order (text keys
in byte order, whatever the database's collation), times in UTC, and read in
one snapshot. Rows are streamed, so memory does not grow with the tables.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.projections.schema import DIGESTED, Table, checked_name

_INTEGER_KEYS = frozenset({"position", "line", "version", "partition"})
ROWS_PER_FETCH = 5_000


def _order(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.Identifier(name) if name in _INTEGER_KEYS
        else sql.SQL('{} COLLATE "C"').format(sql.Identifier(name))
        for name in table.key)


def digest(conn: psycopg.Connection[Any], schema: str) -> str:
    """The digest of the read models in `schema` (hex sha256)."""
    name = sql.Identifier(checked_name(schema))
    hasher = hashlib.sha256()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        for table in DIGESTED:
            hasher.update(f"table {table.name}\n".encode())
            query = sql.SQL("SELECT t::text FROM {}.{} AS t ORDER BY {}").format(
                name, sql.Identifier(table.name), _order(table))
            with conn.cursor(name=f"digest_{table.name}", row_factory=tuple_row) as cur:
                cur.itersize = ROWS_PER_FETCH
                cur.execute(query)
                for (line,) in cur:
                    hasher.update(line.encode())
                    hasher.update(b"\n")
    return hasher.hexdigest()
