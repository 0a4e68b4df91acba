"""Upgrades of an existing projections schema to the code's `SCHEMA_VERSION`.

`meta.schema_version` says which rules a schema's rows were written by. A new
schema starts at the current version; an older one is moved forward one step
at a time, in the transaction that creates the tables, so every process that
opens the schema sees it upgraded or not at all.

- 1 → 2: receivables' `due_by` as the amended rule counts it (`core.deadlines`):
  00:00 JST of the 61st day, the delivery day the first, instead of the delivery
  instant + 60 days. The SQL is the same arithmetic as `payment_due_by`
  (tests/integration/test_schema_migrations.py checks they agree).
- 2 → 3: the summary rows beside the rows (`summaries`: balance totals, day and
  block sums, receivable totals) filled from the rows, and the receivables'
  worker and client indexes made again in page order (`worker_id, job_id,
  item_id`). It reads every ledger entry once, inside the schema's creation
  lock: at 10,000,000 entries a few minutes during which the projectors and the
  API wait to open the schema (`bench/api.py --scale` fills as much in ~4–7
  minutes on 2 busy cores, with the grown rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.projections.storage import summaries

# What `payment_due_by` computes, in SQL: the JST date of delivery + 60 days, at
# 00:00 JST.
_DUE_BY = ("((delivered_at AT TIME ZONE 'Asia/Tokyo')::date + 60)::timestamp "
           "AT TIME ZONE 'Asia/Tokyo'")
_STEPS: dict[str, tuple[str, Callable[[], Sequence[str]]]] = {
    "1": ("2", lambda: tuple(f"UPDATE {{schema}}.{table} SET due_by = {_DUE_BY} "
                             "WHERE delivered_at IS NOT NULL"
                             for table in ("receivables", "receivables_history"))),
    "2": ("3", lambda: (*(statement for n, party in ((1, "worker_id"), (2, "client_id"))
                          for statement in (
        f"DROP INDEX IF EXISTS {{schema}}.receivables_{n}",
        f"CREATE INDEX receivables_{n} ON {{schema}}.receivables ({party}, job_id, item_id)")),
        *summaries.fill_statements())),
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
        for statement in statements():
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
