"""Configured services are used as given; nothing embedded starts for them."""

from __future__ import annotations

from pathlib import Path

from settlement.infra.broker import kafka
from settlement.infra.config import Settings
from settlement.infra.postgres import database


def test_configured_database_is_used_as_given(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://u@db/s", state_dir=tmp_path / "state")
    with database(settings) as url:
        assert url == "postgresql://u@db/s"
    assert not (tmp_path / "state").exists()


def test_configured_broker_is_used_as_given() -> None:
    with kafka(Settings(kafka_bootstrap="kafka:9092")) as bootstrap:
        assert bootstrap == "kafka:9092"
