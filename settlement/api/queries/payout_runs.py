"""Payout runs (table `payout_runs`), what each held or carried over (table
`payout_holds`), and a run's Zengin file as the run stored it with its
completion (the event store's `stored_payout_files`, SPEC §11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from settlement.api.queries import schema_id
from settlement.api.queries.payouts import has_table
from settlement.store.files import files_table

HoldCursor = tuple[str, str, str]  # (party_type, party_id, currency)


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    content: bytes


def run(conn: psycopg.Connection[Any], schema: str, run_id: str) -> dict[str, Any] | None:
    if not has_table(conn, schema, "payout_runs"):
        return None
    query = sql.SQL("SELECT * FROM {}.payout_runs WHERE run_id = %s").format(schema_id(schema))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (run_id,)).fetchone()


def latest_completed(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """The run completed last (by its time), or None."""
    if not has_table(conn, schema, "payout_runs"):
        return None
    query = sql.SQL("SELECT run_id FROM {}.payout_runs WHERE status = 'completed' "
                    "ORDER BY time DESC, run_id DESC LIMIT 1").format(schema_id(schema))
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query).fetchone()
    return None if row is None else str(row[0])


_HOLD_FILTERS = ("run_id = %(run)s AND (%(reason)s::text IS NULL OR reason = %(reason)s) "
                 "AND (%(party)s::text IS NULL OR party_id = %(party)s)")


def holds(conn: psycopg.Connection[Any], schema: str, run_id: str, *, now: datetime,
          reason: str | None = None, party_id: str | None = None,
          after: HoldCursor | None = None, limit: int = 100,
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A page of the run's holds (with `overdue` as of `now`) and, per currency, the
    totals held, carried over and overdue over every matching hold."""
    if not has_table(conn, schema, "payout_holds"):
        return [], []
    s = schema_id(schema)
    params = {"run": run_id, "reason": reason, "party": party_id, "now": now,
              "after": list(after) if after else None, "limit": limit}
    page = sql.SQL(
        "SELECT party_type, party_id, currency, amount, reason, due_by, "
        "(due_by IS NOT NULL AND due_by <= %(now)s) AS overdue FROM {}.payout_holds "
        "WHERE " + _HOLD_FILTERS + " AND (%(after)s::text[] IS NULL OR "
        '(party_type COLLATE "C", party_id COLLATE "C", currency) > '
        '(%(after)s[1] COLLATE "C", %(after)s[2] COLLATE "C", %(after)s[3])) '
        'ORDER BY party_type COLLATE "C", party_id COLLATE "C", currency LIMIT %(limit)s'
    ).format(s)
    totals = sql.SQL(
        "SELECT currency, "
        "coalesce(sum(amount) FILTER (WHERE reason <> 'below_minimum'), 0) AS held, "
        "coalesce(sum(amount) FILTER (WHERE reason = 'below_minimum'), 0) AS carried_over, "
        "coalesce(sum(amount) FILTER (WHERE due_by <= %(now)s), 0) AS overdue "
        "FROM {}.payout_holds WHERE " + _HOLD_FILTERS + " GROUP BY currency ORDER BY currency"
    ).format(s)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(page, params).fetchall()
        sums = cur.execute(totals, params).fetchall()
    return rows, sums


def zengin_file(conn: psycopg.Connection[Any], run_id: str,
                currency: str = "JPY") -> StoredFile | None:
    """The file the run stored, or None (none stored, or no event store yet)."""
    table = files_table()
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if found is None or found[0] is None:
            return None
        row = cur.execute(sql.SQL("SELECT sha256, content FROM {} WHERE run_id = %s "
                                  "AND currency = %s").format(sql.Identifier(table)),
                          (run_id, currency)).fetchone()
    return None if row is None else StoredFile(str(row[0]), bytes(row[1]))
