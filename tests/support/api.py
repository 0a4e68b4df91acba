"""A populated database for the finance API tests: a rich marketplace day stored
through the application, then projected into the live schema by the projector's
own `Store.apply_batch` (the events as the relay publishes them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from settlement.application.app import SettlementApplication
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import cloud_events
from settlement.projections.storage import schema
from settlement.projections.storage.store import Store
from support.projections import rich_day, store

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
FINANCE_TOKEN, AUDITOR_TOKEN = "fin-token-1", "aud-token-1"
TOKENS = {FINANCE_TOKEN: "finance", AUDITOR_TOKEN: "auditor"}
# The shape the payouts projection writes (issue 5, point 2).
PAYOUTS_TABLE = ("CREATE TABLE IF NOT EXISTS projections.payouts (payout_id text PRIMARY KEY, "
                 "party_type text NOT NULL, party_id text NOT NULL, currency text NOT NULL, "
                 "amount numeric NOT NULL, status text NOT NULL, items jsonb NOT NULL, "
                 "position bigint NOT NULL)")
PAYOUTS = [
    ("po-1", "worker", "worker-1", "JPY", Decimal("100327"), "initiated",
     '[{"job_id": "day0-project", "item_id": "m1"}]', 900),
    ("po-2", "client", "client-a", "JPY", Decimal("25000"), "settled", "[]", 901),
    ("po-3", "worker", "worker-u", "USD", Decimal("85.05"), "failed", "[]", 902),
]


@dataclass(frozen=True)
class Populated:
    url: str
    events: int


def project_all(app: SettlementApplication, conn: psycopg.Connection[Any],
                schema_name: str = schema.LIVE_SCHEMA, page: int = 500) -> int:
    """Apply every stored event to the live projections; the number applied."""
    schema.create(conn, schema_name)
    target = Store(conn, schema_name)
    position, last, applied = 0, app.recorder.max_notification_id() or 0, 0
    while position < last:
        batch = cloud_events(app, position + 1, page, stop=last)
        if not batch:
            break
        applied += target.apply_batch([parse(event) for event in batch]).applied
        position = batch[-1]["data"]["position"]
    return applied


@contextmanager
def populated_database(pg_server: str, days: int = 1) -> Iterator[Populated]:
    name = f"api_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server, name)
    try:
        app = SettlementApplication(pg_env(url))
        try:
            for n in range(days):
                store(app, rich_day(START.replace(day=START.day + n), f"day{n}"))
            with psycopg.connect(url, autocommit=True) as conn:
                events = project_all(app, conn)
                conn.execute(PAYOUTS_TABLE)
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO projections.payouts (payout_id, party_type, "
                                    "party_id, currency, amount, status, items, position) "
                                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", PAYOUTS)
        finally:
            app.close()
        yield Populated(url, events)
    finally:
        drop_database(pg_server, name)
