"""Wiring: the one place that turns settings into running adapters.

Tests and the CLI open the application through here, so an adapter (database,
broker) can be swapped by configuration alone.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from settlement.application.app import SettlementApplication
from settlement.core.fees import load_fee_plans
from settlement.infra import pool
from settlement.infra.broker import answers, ensure_topics
from settlement.infra.config import Settings
from settlement.infra.outage import BROKER, DATABASE, Outages
from settlement.infra.postgres import database, pg_env


def owner_env() -> dict[str, str]:
    """Cache settings for a process that owns its escrows (a Kafka partition owner):
    no fast-forward round trip and no deep copy per command. Safe because a
    stale write fails on the event version, and a failed batch evicts every escrow
    it touched from the cache (docs/ingestion.md)."""
    return {"AGGREGATE_CACHE_FASTFORWARD": "n", "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"}


def tune_gc() -> None:
    """For a long-running consumer, relay or projector process: freeze what start-up
    allocated and collect the young generation less often. Collection was a quarter
    of the input consumer's time (profiled); escrows, batches and views are
    short-lived or cached for long, so little is lost, and a projector's cache of
    views is not walked by a full collection every few thousand events."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


def application(database_url: str, settings: Settings,
                env: Mapping[str, str] | None = None) -> SettlementApplication:
    return SettlementApplication({**pg_env(database_url), **(env or {})},
                                 plans=load_fee_plans(settings.fee_plans_path))


@contextmanager
def open_application(settings: Settings,
                     env: Mapping[str, str] | None = None) -> Iterator[SettlementApplication]:
    """The application on the configured (or embedded) PostgreSQL."""
    with database(settings) as url:
        app = application(url, settings, env)
        try:
            yield app
        finally:
            app.close()


async def service_application(url: str, settings: Settings, outages: Outages,
                              stop: asyncio.Event, env: Mapping[str, str] | None = None,
                              ) -> SettlementApplication | None:
    """The application of a long-running process (`settlement.infra.pool`'s bounds),
    once the database answers: an outage at start-up is waited out like one later
    (logged by `outages`). None if `stop` was set meanwhile."""

    async def answers() -> None:
        await asyncio.to_thread(pool.answers, url)

    def make() -> SettlementApplication:
        # Asked first: a pool opened on a database that is away keeps reconnecting
        # in threads of its own.
        pool.answers(url)
        app = application(url, settings, {**pool.service_env(), **(env or {})})
        pool.bound(app)
        return app

    async def opened() -> SettlementApplication:
        return await asyncio.to_thread(make)

    return await outages.run(opened, {DATABASE: answers}, stop)


async def service_topics(bootstrap: str, names: Iterable[str], partitions: int,
                         outages: Outages, stop: asyncio.Event) -> bool:
    """`ensure_topics` once the broker answers (an outage waited out and logged by
    `outages`); False if `stop` was set meanwhile."""
    created = await outages.run(lambda: ensure_topics(bootstrap, names, partitions=partitions),
                                {BROKER: lambda: answers(bootstrap)}, stop)
    return created is not None
