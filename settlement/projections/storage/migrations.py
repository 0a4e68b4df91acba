"""Upgrades of an existing projections schema to the code's `SCHEMA_VERSION`.

`meta.schema_version` says which rules a schema's rows were written by. A new
schema starts at the current version; an older one is moved forward one step
at a time, in the transaction that creates the tables, so every process that
opens the schema sees it upgraded or not at all.

- 1 → 2: receivables' `due_by` as the amended rule counts it (`core.deadlines`):
  00:00 JST of the 61st day, the delivery day the first, instead of the delivery
  instant + 60 days. The SQL is the same arithmetic as `payment_due_by`
  (tests/integration/test_schema_migrations.py checks they agree).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

# What `payment_due_by` computes, in SQL: the JST date of delivery + 60 days, at
# 00:00 JST.
_DUE_BY = ("((delivered_at AT TIME ZONE 'Asia/Tokyo')::date + 60)::timestamp "
           "AT TIME ZONE 'Asia/Tokyo'")
_STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "1": ("2", tuple(f"UPDATE {{schema}}.{table} SET due_by = {_DUE_BY} "
                     "WHERE delivered_at IS NOT NULL"
                     for table in ("receivables", "receivables_history"))),
}


def upgrade(conn: psycopg.Connection[Any], schema: sql.Identifier, current: str) -> None:
    """Move the schema's rows from its stored version to `current`, step by step (in
    the caller's transaction)."""
    version = _stored_version(conn, schema)
    while version != current:
        if version not in _STEPS:
            raise ValueError(f"projections schema version {version!r} has no upgrade "
                             f"to {current!r}: rebuild it (settlement rebuild)")
        version, statements = _STEPS[version]
        for statement in statements:
            conn.execute(sql.SQL(statement).format(schema=schema))
        conn.execute(sql.SQL("UPDATE {}.meta SET value = %s WHERE key = 'schema_version'")
                     .format(schema), (version,))


def _stored_version(conn: psycopg.Connection[Any], schema: sql.Identifier) -> str:
    # A cursor of its own: the caller's connection may return dict rows.
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'")
                          .format(schema)).fetchone()
    assert row is not None, "create() inserts the version before upgrading"
    return str(row[0])
