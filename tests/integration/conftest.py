"""Wiring for integration tests: settings and eventsourcing environments on real services."""

from __future__ import annotations

from pathlib import Path

import pytest

from settlement.config import Settings
from settlement.infra.postgres import pg_env


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
