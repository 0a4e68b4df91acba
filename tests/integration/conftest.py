"""Wiring for integration tests: settings and eventsourcing environments on real services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from settlement.application.app import SettlementApplication
from settlement.infra.bootstrap import owner_env
from settlement.infra.broker import ensure_topics
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.infra.topics import Topics
from support.ingest import Reference, commands_of, digests, stored_event_count


@pytest.fixture
def es_env(database_url: str) -> dict[str, str]:
    """eventsourcing environment for the test's own database."""
    return pg_env(database_url)


@pytest.fixture
def settings(database_url: str, broker: str, topic_prefix: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test's database, the shared broker and its own topics."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap=broker,
        topic_prefix=topic_prefix,
        state_dir=tmp_path / ".settlement",
    )


@pytest.fixture
def topics(broker: str, topic_prefix: str) -> Topics:
    """The service's topics under the test's own prefix, created with 4 partitions."""
    names = Topics(topic_prefix)
    asyncio.run(ensure_topics(broker, names.all, partitions=4))
    return names


@pytest.fixture
def owner_app(database_url: str) -> Iterator[SettlementApplication]:
    """The application configured as the consumer runs it (a partition owner's cache)."""
    app = SettlementApplication({**pg_env(database_url), **owner_env()})
    yield app
    app.close()


@pytest.fixture
def reference(pg_server: str) -> Iterator[Reference]:
    """Escrow digests and stored event count of applying events directly, uninterrupted."""
    names: list[str] = []

    def build(events: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], int]:
        name = f"ref_{uuid.uuid4().hex[:12]}"
        names.append(name)
        app = SettlementApplication(pg_env(create_database(pg_server, name)))
        try:
            app.handle_batch(commands_of(events))
            return digests(app, (e["data"]["job_id"] for e in events)), stored_event_count(app)
        finally:
            app.close()

    yield build
    for name in names:
        drop_database(pg_server, name)


@pytest.fixture
def app(es_env: dict[str, str]) -> Iterator[SettlementApplication]:
    """The application on the test's own database (modules may override it)."""
    application = SettlementApplication(es_env)
    yield application
    application.close()


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's own database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
