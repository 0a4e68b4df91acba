"""The projector's staging tables keep their rows past a commit
(`writes.STAGING_KEPT`): each write empties what it staged in its own
transaction, and every so many writes they are vacuumed. After every batch, and
after a batch that failed half-way, they are empty, and the read models are what
a rebuild makes."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from settlement.application.app import SettlementApplication
from settlement.infra import failpoints
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage import schema, summaries
from settlement.projections.storage import store as store_module
from settlement.projections.storage.digest import digests
from settlement.projections.storage.store import Store
from settlement.service.scenario import marketplace_parties
from support.projections import rich_day, stored_cloud_events
from support.projections import store as store_script

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
LIVE = schema.LIVE_SCHEMA


class _Failed(Exception):
    """A write stopped half-way (after its first COPY)."""


def staged_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The connection's temporary tables that hold rows, with their row counts."""
    tables = conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r' "
                          "AND relnamespace = pg_my_temp_schema()").fetchall()
    assert len(tables) > 10  # the staging tables were made on this connection
    counts = {name: conn.execute(f'SELECT count(*) FROM pg_temp."{name}"').fetchone()
              for (name,) in tables}
    return {name: count[0] for name, count in counts.items() if count and count[0]}


def test_every_batch_leaves_the_staging_tables_empty_and_the_rows_as_rebuilt(
        app: SettlementApplication, conn: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "STAGING_VACUUM_EVERY_WRITES", 1)
    store_script(app, [*marketplace_parties(START, "d0"),
                       *(step for day in range(3)
                         for step in rich_day(START + timedelta(days=day), f"d{day}"))])
    events = [parse(e) for e in stored_cloud_events(app)]
    held, rest = events[-30:], events[:-30]
    schema.create(conn, LIVE)
    store = Store(conn, LIVE)
    rng = random.Random(5)
    n = batches = 0
    while n < len(rest):
        size = rng.randint(1, 4)
        store.apply_batch(rest[n:n + size])
        n, batches = n + size, batches + 1
        assert staged_rows(conn) == {}
    # Vacuumed after every write here: the pages the deletes left are given back
    # (without it, 13 pages in all by now).
    pages = conn.execute("SELECT sum(pg_relation_size(oid)) / 8192 FROM pg_class WHERE "
                         "relkind = 'r' AND relnamespace = pg_my_temp_schema()").fetchone()
    assert pages is not None and pages[0] == 0 and batches > 20, (pages, batches)
    written = digests(conn, LIVE)

    def fail(name: str) -> None:
        if name == "project.mid_batch":
            raise _Failed

    with monkeypatch.context() as failing:
        failing.setattr(failpoints, "hit", fail)
        with pytest.raises(_Failed):
            store.apply_batch(held)
    assert staged_rows(conn) == {}
    assert digests(conn, LIVE) == written  # nothing of the failed batch stayed

    store.apply_batch(held)
    assert staged_rows(conn) == {}
    assert summaries.unmatched(conn, LIVE) == []
    live = digests(conn, LIVE)
    rebuilt = rebuild(app, f"r_{uuid.uuid4().hex[:8]}", conn=conn, bulk=True)
    assert {t: d for t, d in rebuilt.tables.items() if live.tables[t] != d} == {}
