"""`GET /metrics`: Prometheus text read from the database at each scrape, so the
figures are the service's whatever process serves them (the API runs beside the
consumer, relay and projector, not inside them).

Exported (every one a gauge or counter on the database's state):
- `settlement_events_stored` — the event store's highest position (its head);
- `settlement_projection_position` / `settlement_projection_lag` — the highest
  position the projections applied and how far behind the head it is;
- `settlement_projection_events_per_second` — positions applied per second since
  the previous scrape (≈ events/s; positions may have gaps);
- `settlement_relay_position{relay}` / `settlement_relay_lag{relay}` — the outbox relay;
- `settlement_consumer_next_offset{consumer,topic,partition}` — the input consumer's
  committed Kafka offsets (lag = the topic's end offset minus these, which only the
  broker knows: compare with a Kafka exporter);
- `settlement_commands_total{outcome}` — marketplace commands seen, `applied` or
  `rejected`, and `settlement_rejections_total{code}` by rejection code.
Dead-lettered records are written to Kafka only and are not counted here (the
input consumer logs each one as `ingest.dead_letter`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import sql
from psycopg.rows import tuple_row

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EVENTS, RELAYS, CONSUMERS, COMMANDS = ("settlement_events", "settlement_relay_positions",
                                       "settlement_positions", "settlement_commands")


class _Rate:
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


_RATES: dict[str, _Rate] = {}


def _rate(schema: str) -> _Rate:
    return _RATES.setdefault(schema, _Rate())


class _Snapshot(Collector):
    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn, self.schema = conn, schema

    def _rows(self, query: sql.Composed, table: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor(row_factory=tuple_row) as cur:
            found = cur.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if found is None or found[0] is None:
                return []
            return cur.execute(query).fetchall()

    def collect(self) -> Iterator[Metric]:
        head_rows = self._rows(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(EVENTS)), EVENTS)
        head = int(head_rows[0][0]) if head_rows else 0
        yield GaugeMetricFamily("settlement_events_stored",
                                "highest position in the event store", value=head)
        applied_rows = self._rows(sql.SQL("SELECT coalesce(max(position), 0) FROM {}.audit_log")
                                  .format(sql.Identifier(self.schema)), f"{self.schema}.audit_log")
        applied = int(applied_rows[0][0]) if applied_rows else 0
        yield GaugeMetricFamily("settlement_projection_position",
                                "highest event position the projections applied", value=applied)
        yield GaugeMetricFamily("settlement_projection_lag",
                                "positions stored but not projected yet",
                                value=max(head - applied, 0))
        yield GaugeMetricFamily("settlement_projection_events_per_second",
                                "positions projected per second since the previous scrape",
                                value=_rate(self.schema).update(applied, time.monotonic()))
        relay = GaugeMetricFamily("settlement_relay_position",
                                  "last position the relay published", labels=["relay"])
        relay_lag = GaugeMetricFamily("settlement_relay_lag", "positions not published yet",
                                      labels=["relay"])
        for name, position in self._rows(sql.SQL("SELECT relay, position FROM {}").format(
                sql.Identifier(RELAYS)), RELAYS):
            relay.add_metric([name], int(position))
            relay_lag.add_metric([name], max(head - int(position), 0))
        yield relay
        yield relay_lag
        offsets = GaugeMetricFamily("settlement_consumer_next_offset",
                                    "next Kafka offset the input consumer will read",
                                    labels=["consumer", "topic", "partition"])
        for consumer, topic, partition, offset in self._rows(sql.SQL(
                "SELECT consumer, topic, partition, next_offset FROM {}").format(
                    sql.Identifier(CONSUMERS)), CONSUMERS):
            offsets.add_metric([consumer, topic, str(partition)], int(offset))
        yield offsets
        commands = CounterMetricFamily("settlement_commands", "marketplace commands seen",
                                       labels=["outcome"])
        rejections = CounterMetricFamily("settlement_rejections",
                                         "commands rejected by a business rule", labels=["code"])
        outcomes: dict[str, int] = {"applied": 0, "rejected": 0}
        for outcome, count in self._rows(sql.SQL(
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


def metrics_response(conn: psycopg.Connection[Any], schema: str) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(conn, schema))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
