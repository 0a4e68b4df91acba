"""The projector keeps the views of the jobs it folded in memory while it owns
their partitions: a rebalance must make it read them from PostgreSQL again, or
what another owner stored meanwhile would be applied a second time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer

from settlement.application.app import SettlementApplication
from settlement.infra.topics import Topics
from settlement.projections.live.projector import Projector
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage import schema
from settlement.projections.storage.digest import digest
from settlement.projections.storage.schema import LIVE_SCHEMA
from settlement.projections.storage.store import Store
from support.projections import publish_events, rich_day, store, stored_cloud_events

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
TIMEOUT_S = 60.0


async def _until(condition: Any, what: str, task: asyncio.Task[Any]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not await asyncio.to_thread(condition):
        if task.done():
            task.result()  # the projector's error, if it stopped
            raise AssertionError(f"the projector stopped before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def test_after_a_rebalance_the_projector_reads_what_another_owner_stored(
    app: SettlementApplication, conn: psycopg.Connection[Any], database_url: str, broker: str,
    topics: Topics,
) -> None:
    for n in range(2):
        store(app, rich_day(START + timedelta(days=n), f"day{n}"))
    events = stored_cloud_events(app)
    by_job = Counter(e["data"].get("job_id") for e in events)
    job = max((j for j in by_job if j is not None), key=by_job.__getitem__)
    later = [e for e in events if e["data"].get("job_id") == job][by_job[job] // 2:]
    first, rest = [e for e in events if e not in later], later
    # Later events of a job the projector has in memory, stored meanwhile by "another
    # owner" of its partition (the projector's positions do not move).
    behind_its_back = rest[:2]
    group = f"{topics.prefix}cache"
    schema.create(conn, LIVE_SCHEMA)
    counted = Store(conn, LIVE_SCHEMA)

    async def scenario() -> None:
        stop = asyncio.Event()
        with psycopg.connect(database_url, autocommit=True) as own:
            projector = Projector(own, broker, topics, group_id=group,
                                  client_id=f"{group}-{uuid.uuid4().hex[:6]}")
            running = asyncio.create_task(projector.run(stop))
            try:
                await asyncio.to_thread(publish_events, broker, topics.events, first)
                await _until(lambda: counted.event_count() == len(first), "the first half",
                             running)
                with psycopg.connect(database_url, autocommit=True) as other:
                    Store(other, LIVE_SCHEMA).apply_batch([parse(e) for e in behind_its_back])
                # A second member joins the group and leaves: two rebalances.
                generation = projector._generation
                member = AIOKafkaConsumer(topics.events, bootstrap_servers=broker,
                                          group_id=group, enable_auto_commit=False)
                await member.start()
                await _until(lambda: bool(member.assignment()), "the second member's share",
                             running)
                await member.stop()
                assert projector._generation > generation
                await asyncio.to_thread(publish_events, broker, topics.events, rest)
                await _until(lambda: counted.event_count() == len(events), "every event",
                             running)
            finally:
                stop.set()
                await running
            assert projector.metrics.applied == len(events) - len(behind_its_back)

    asyncio.run(scenario())
    rebuilt = rebuild(app, f"rebuilt_{uuid.uuid4().hex[:8]}", conn=conn)
    assert digest(conn, LIVE_SCHEMA) == rebuilt.digest
