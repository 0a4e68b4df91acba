"""Canonical digests of a projections schema: equal digests, equal read models.

sha256 over every digested table (see `schema.TABLES`) in a fixed order, each
row as PostgreSQL's text form of the row, rows in primary-key order (text keys
in byte order, whatever the database's collation), times in UTC, and read in
one snapshot. Rows are streamed, so memory does not grow with the tables.

`digests` gives the same overall digest and, in the same pass, one digest per
table, so a comparison can say which projection differs; `query_digest` digests
the rows of any query the same way (for "as of" answers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.projections.storage.schema import DIGESTED, Table, checked_name

# Key columns that are not text (no collation to order them by): integers, dates.
_INTEGER_KEYS = frozenset({"position", "line", "version", "partition", "day", "block"})
ROWS_PER_FETCH = 5_000


@dataclass(frozen=True)
class TableDigest:
    """How many rows and the sha256 of their text forms, one per line."""

    rows: int
    sha256: str


@dataclass(frozen=True)
class Digests:
    overall: str
    tables: dict[str, TableDigest] = field(default_factory=dict)


def order_by(table: Table) -> sql.Composable:
    """The table's primary key as an ORDER BY list, text in byte order."""
    return sql.SQL(", ").join(
        sql.Identifier(name) if name in _INTEGER_KEYS
        else sql.SQL('{} COLLATE "C"').format(sql.Identifier(name))
        for name in table.key)


@contextmanager
def snapshot(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One read-only snapshot, times in UTC, for every query inside."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        yield


def _stream(conn: psycopg.Connection[Any], query: sql.Composed,
            params: Mapping[str, Any] | None, *hashers: Any) -> int:
    """Feed every row (one text column) of `query` to `hashers`; the row count.
    Runs inside the caller's transaction (a server-side cursor needs one)."""
    rows = 0
    with conn.cursor(name="settlement_digest", row_factory=tuple_row) as cur:
        cur.itersize = ROWS_PER_FETCH
        cur.execute(query, params)
        for (line,) in cur:
            data = line.encode()
            for hasher in hashers:
                hasher.update(data)
                hasher.update(b"\n")
            rows += 1
    return rows


def digests(conn: psycopg.Connection[Any], schema: str) -> Digests:
    """The overall digest of the read models in `schema` and one per table."""
    name = sql.Identifier(checked_name(schema))
    overall = hashlib.sha256()
    tables: dict[str, TableDigest] = {}
    with snapshot(conn):
        for table in DIGESTED:
            overall.update(f"table {table.name}\n".encode())
            own = hashlib.sha256()
            query = sql.SQL("SELECT t::text FROM {}.{} AS t ORDER BY {}").format(
                name, sql.Identifier(table.name), order_by(table))
            rows = _stream(conn, query, None, overall, own)
            tables[table.name] = TableDigest(rows, own.hexdigest())
    return Digests(overall.hexdigest(), tables)


def digest(conn: psycopg.Connection[Any], schema: str) -> str:
    """The digest of the read models in `schema` (hex sha256)."""
    return digests(conn, schema).overall


def query_digest(conn: psycopg.Connection[Any], query: sql.Composed,
                 params: Mapping[str, Any] | None = None) -> TableDigest:
    """The digest of the rows of `query`, which selects one text column in a
    canonical order. Call it inside `snapshot` to compare several queries."""
    hasher = hashlib.sha256()
    rows = _stream(conn, query, params, hasher)
    return TableDigest(rows, hasher.hexdigest())
