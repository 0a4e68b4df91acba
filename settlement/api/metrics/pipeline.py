"""The pipeline's progress from the positions stored beside the data: the event
store's head, the projections, the relays, the projector groups, the input
consumer's offsets, and the commands seen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client.core import Metric
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.metrics.catalogue import counter, gauge
from settlement.api.queries.progress import Progress

CONSUMERS, COMMANDS = "settlement_positions", "settlement_commands"


class Rate:
    """Positions per second between two scrapes."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def update(self, position: int, now: float) -> float:
        with self._lock:
            last, self._last = self._last, (now, position)
        if last is None or now <= last[0]:
            return 0.0
        return max(position - last[1], 0) / (now - last[0])


def rows(conn: psycopg.Connection[Any], query: sql.Composed, table: str
         ) -> list[tuple[Any, ...]]:
    """The rows of `query`, or none while `table` does not exist."""
    with conn.cursor(row_factory=tuple_row) as cur:
        found = cur.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if found is None or found[0] is None:
            return []
        return cur.execute(query).fetchall()


def positions(progress: Progress, applied: int, rate: float) -> Iterator[Metric]:
    head = progress.head
    yield gauge("settlement_events_stored", value=head)
    yield gauge("settlement_projection_position", value=applied)
    yield gauge("settlement_projection_lag", value=max(head - applied, 0))
    yield gauge("settlement_projection_events_per_second", value=rate)
    relay = gauge("settlement_relay_position", ["relay"])
    relay_lag = gauge("settlement_relay_lag", ["relay"])
    relay_age = gauge("settlement_relay_progress_age_seconds", ["relay"])
    for r in progress.relays:
        relay.add_metric([r.relay], r.position)
        relay_lag.add_metric([r.relay], max(head - r.position, 0))
        relay_age.add_metric([r.relay], max(r.progress_age_s, 0.0))
    projector = gauge("settlement_projector_position", ["projector"])
    projector_lag = gauge("settlement_projector_lag", ["projector"])
    for p in progress.projectors:
        projector.add_metric([p.projector], p.position)
        projector_lag.add_metric([p.projector], max(head - p.position, 0))
    yield from (relay, relay_lag, relay_age, projector, projector_lag)


def consumers_and_commands(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    offsets = gauge("settlement_consumer_next_offset", ["consumer", "topic", "partition"])
    for consumer, topic, partition, offset in rows(conn, sql.SQL(
            "SELECT consumer, topic, partition, next_offset FROM {}").format(
                sql.Identifier(CONSUMERS)), CONSUMERS):
        offsets.add_metric([consumer, topic, str(partition)], int(offset))
    yield offsets
    commands = counter("settlement_commands_total", ["outcome"])
    rejections = counter("settlement_rejections_total", ["code"])
    outcomes: dict[str, int] = {"applied": 0, "rejected": 0}
    # A count over every command ever seen: the one figure here that grows with
    # history (the table has no summary to read instead).
    for outcome, count in rows(conn, sql.SQL(
            "SELECT outcome, count(*) FROM {} GROUP BY outcome").format(
                sql.Identifier(COMMANDS)), COMMANDS):
        kind, _, code = str(outcome).partition(":")
        outcomes[kind] = outcomes.get(kind, 0) + int(count)
        if kind == "rejected":
            rejections.add_metric([code or "unknown"], int(count))
    for kind, count in sorted(outcomes.items()):
        commands.add_metric([kind], count)
    yield commands
    yield rejections
