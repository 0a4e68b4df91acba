"""Heartbeats of the parts of `settlement run`, in PostgreSQL, for readiness and alerts.

Table `settlement_heartbeats` (in the event store's database): one row per
process (`part`, e.g. `ingest-1`, `relay`, `project`, `timers`), written by the
process itself every few seconds while it runs: when it last beat, when it last
made progress (a batch stored, an event published, a timer pass done), its lag
(records or events behind, where it knows it) and a small JSON `detail`. The
API's `/readyz` and `/metrics` read it: a part whose beat is old is stalled or
gone; a part that beats but makes no progress while it has lag is stuck.

Writes are best effort: a heartbeat that cannot be written (the database is
away) is skipped, never an error of the process's own work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

TABLE = "settlement_heartbeats"
_CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (part text PRIMARY KEY, pid integer NOT NULL, "
           "beat_at timestamptz NOT NULL, progress_at timestamptz, lag bigint, "
           "detail jsonb NOT NULL DEFAULT '{}')")
_BEAT = (f"INSERT INTO {TABLE} AS h (part, pid, beat_at, progress_at, lag, detail) "
         "VALUES (%(part)s, %(pid)s, now(), CASE WHEN %(progressed)s THEN now() END, %(lag)s, "
         "%(detail)s) ON CONFLICT (part) DO UPDATE SET pid = EXCLUDED.pid, beat_at = now(), "
         "progress_at = CASE WHEN %(progressed)s THEN now() ELSE h.progress_at END, "
         "lag = EXCLUDED.lag, detail = EXCLUDED.detail")
_READ = (f"SELECT part, pid, beat_at, progress_at, lag, detail, now() AS now FROM {TABLE} "
         "ORDER BY part")


@dataclass(frozen=True)
class Heartbeat:
    part: str
    pid: int
    beat_at: datetime
    progress_at: datetime | None
    lag: int | None
    detail: dict[str, Any]
    now: datetime  # the database's clock when read, so ages need no local clock

    @property
    def beat_age_s(self) -> float:
        return (self.now - self.beat_at).total_seconds()

    @property
    def progress_age_s(self) -> float | None:
        return None if self.progress_at is None else (self.now - self.progress_at).total_seconds()


def create_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_CREATE)


def beat(conn: psycopg.Connection[Any], part: str, *, progressed: bool, lag: int | None = None,
         detail: dict[str, Any] | None = None) -> None:
    """Record that `part` is alive (and made progress since its last beat, if
    `progressed`), in the connection's current transaction or autocommit."""
    conn.execute(_BEAT, {"part": part, "pid": os.getpid(), "progressed": progressed,
                         "lag": lag, "detail": Jsonb(detail or {})})


def read_all(conn: psycopg.Connection[Any]) -> list[Heartbeat]:
    """Every part's last heartbeat (none if the table does not exist yet)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    if not exists or not exists[0]:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return [Heartbeat(**row) for row in cur.execute(_READ)]
