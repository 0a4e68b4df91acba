"""`GET /metrics`: Prometheus text read from the database at each scrape, so the
figures are the service's whatever process serves them (the API runs beside the
consumer, relay, projectors and timers, not inside them).

Every metric is listed with its help in `catalogue` (docs/api.md explains them):
the pipeline's positions and lags (`pipeline`), the processes' heartbeats
(`parts`), and what the money and audit alerts watch (`finance`). Each read is
of a small table, an index's end or a partial index of open claims, so a scrape
stays cheap as history grows; the one exception is the count of commands seen
(`settlement_commands_total`), a count over the commands table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from psycopg import sql

from settlement.api.metrics import finance, parts, pipeline, reconciliation
from settlement.api.queries import schema_id
from settlement.api.queries.deadlines import payout_deadlines
from settlement.api.queries.progress import progress, projections_exist
from settlement.api.queries.safeguarding import safeguarding_by_currency
from settlement.api.verifier import Verified

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_RATES: dict[str, pipeline.Rate] = {}


class _Snapshot(Collector):
    def __init__(self, conn: psycopg.Connection[Any], schema: str, now: datetime,
                 verified: Verified | None) -> None:
        self.conn, self.schema, self.now, self.verified = conn, schema, now, verified

    def collect(self) -> Iterator[Metric]:
        conn, schema = self.conn, self.schema
        read_models = projections_exist(conn, schema)
        applied_rows = pipeline.rows(conn, sql.SQL(
            "SELECT coalesce(max(position), 0) FROM {}.audit_log").format(schema_id(schema)),
            f"{schema}.audit_log")
        applied = int(applied_rows[0][0]) if applied_rows else 0
        rate = _RATES.setdefault(schema, pipeline.Rate()).update(applied, time.monotonic())
        state = progress(conn, schema)
        yield from pipeline.positions(state, applied, rate)
        yield from pipeline.consumers_and_commands(conn)
        yield from parts.parts(state.heartbeats)
        # Before the projector made its schema: the families, without samples.
        yield from finance.safeguarding(
            safeguarding_by_currency(conn, schema) if read_models else [])
        yield from finance.deadlines(
            payout_deadlines(conn, schema, self.now) if read_models else [])
        yield from finance.audit_chain(self.verified)
        yield from reconciliation.reconciliation(conn if read_models else None, schema,
                                                 self.now)


def metrics_response(conn: psycopg.Connection[Any], schema: str, now: datetime,
                     verified: Verified | None) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(conn, schema, now, verified))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
