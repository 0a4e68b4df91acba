"""How far each part of `settlement run` got, for `/readyz` and `/metrics`: the
event store's head, the relays' and projectors' stored positions, and the
heartbeats the processes write (`settlement.infra.heartbeats`).

Every read is of a small table or an index's end (the head is the primary key's
maximum): cheap enough for every probe and scrape. A table not created yet (a
fresh database, processes older than the heartbeats) reads as empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.infra import heartbeats
from settlement.infra.heartbeats import Heartbeat

EVENTS_TABLE, RELAYS_TABLE = "settlement_events", "settlement_relay_positions"


@dataclass(frozen=True)
class RelayProgress:
    relay: str
    position: int  # the last notification id the broker acknowledged
    progress_age_s: float  # since the position last moved


@dataclass(frozen=True)
class ProjectorProgress:
    projector: str  # the projector's consumer group
    position: int  # the highest event position it applied (over its partitions)


@dataclass(frozen=True)
class Progress:
    head: int  # the event store's highest position
    relays: list[RelayProgress]
    projectors: list[ProjectorProgress]
    heartbeats: list[Heartbeat]


def projections_exist(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                       (f"{schema}.positions",)).fetchone()
    return bool(row and row[0])


def progress(conn: psycopg.Connection[Any], schema: str) -> Progress:
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute("SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s)",
                            (EVENTS_TABLE, RELAYS_TABLE, f"{schema}.positions")).fetchone()
        events, relays, positions = (name is not None for name in found or (None,) * 3)
        head = 0
        if events:
            row = cur.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
                sql.Identifier(EVENTS_TABLE))).fetchone()
            head = int(row[0]) if row else 0
        relay_rows = cur.execute(sql.SQL(
            "SELECT relay, position, extract(epoch FROM now() - updated_at)::float8 FROM {} "
            "ORDER BY relay").format(sql.Identifier(RELAYS_TABLE))).fetchall() if relays else []
        projector_rows = cur.execute(sql.SQL(
            "SELECT projector, max(last_position) FROM {}.positions GROUP BY projector "
            "ORDER BY projector").format(schema_id(schema))).fetchall() if positions else []
    return Progress(head, [RelayProgress(str(r), int(p), float(a)) for r, p, a in relay_rows],
                    [ProjectorProgress(str(p), int(n)) for p, n in projector_rows],
                    heartbeats.read_all(conn))
