"""Replay status for auditors: how far the live projections and the last replay
schema (`settlement replay`, SPEC §8) reached in the event store's history.

`settlement replay` prints its comparison report and keeps no copy of it, so
the console shows what the database holds: the event store's head, the live
projections' position, and the replay schema's extent (its last position and
the time of its last event, which is the `--as-of` instant or earlier)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries.progress import progress
from settlement.projections.storage.schema import checked_name, role_of

REPLAY_SCHEMA = "replay"  # `settlement replay`'s default schema


@dataclass(frozen=True, slots=True)
class Extent:
    position: int  # the last event position it holds (0: none)
    time: datetime | None  # that event's time


@dataclass(frozen=True, slots=True)
class ReplayStatus:
    head: int  # the event store's highest position
    live: Extent
    replay: Extent | None  # None: no replay schema
    replay_schema: str


def _table(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None


def _extent(conn: psycopg.Connection[Any], schema: str) -> Extent:
    if not _table(conn, f"{checked_name(schema)}.audit_log"):
        return Extent(0, None)
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(sql.SQL("SELECT position, time FROM {}.audit_log "
                                  "ORDER BY position DESC LIMIT 1").format(
                                      sql.Identifier(schema))).fetchone()
    return Extent(int(row[0]), row[1]) if row else Extent(0, None)


def replay_status(conn: psycopg.Connection[Any], live_schema: str,
                  replay_schema: str = REPLAY_SCHEMA) -> ReplayStatus:
    head = progress(conn, live_schema).head
    replay = (_extent(conn, replay_schema) if role_of(conn, replay_schema) is not None
              else None)
    return ReplayStatus(head, _extent(conn, live_schema), replay, replay_schema)
