"""Wiring: the one place that turns settings into running adapters.

Tests and the CLI open the application through here, so an adapter (database,
broker) can be swapped by configuration alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from settlement.application.app import SettlementApplication
from settlement.core.fees import load_fee_plans
from settlement.infra.config import Settings
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
