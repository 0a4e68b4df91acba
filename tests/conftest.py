"""Real services for the tests that ask for them: PostgreSQL and a Kafka-protocol broker.

SETTLEMENT_DATABASE_URL and SETTLEMENT_KAFKA_BOOTSTRAP, when set, point the suite
at existing services instead of embedded ones (the database URL must allow
CREATE DATABASE). Nothing starts until a test asks for a fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from settlement.infra.broker import EmbeddedBroker
from settlement.infra.postgres import create_database, drop_database, embedded_postgres

# Hypothesis's checks of time (a deadline per example, the too-slow health check)
# measure the machine, not the code: the suite runs four workers on two cores beside
# real PostgreSQL and broker processes, where an example generated in milliseconds
# alone may wait a second for a core. A test fails for what it asserts only.
settings.register_profile("settlement", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("settlement")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Mark by folder, so `pytest -m "not integration"` runs the fast layer alone.
    for item in items:
        for layer in ("integration", "e2e"):
            if layer in Path(item.path).parts:
                item.add_marker(layer)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a database on the session's PostgreSQL server; tests use `database_url`."""
    if url := os.environ.get("SETTLEMENT_DATABASE_URL"):
        yield url
        return
    with embedded_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def database_url(pg_server: str) -> Iterator[str]:
    """URL of a fresh, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = create_database(pg_server, name)
    try:
        yield url
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap servers of the session's broker (topics persist across tests)."""
    if bootstrap := os.environ.get("SETTLEMENT_KAFKA_BOOTSTRAP"):
        yield bootstrap
        return
    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, since the session's broker is shared."""
    return f"t{uuid.uuid4().hex[:12]}."
