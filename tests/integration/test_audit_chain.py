"""The hash chain written with every stored event, and its verification on the real
PostgreSQL after rows are edited, deleted or swapped behind the service's back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from settlement.application.app import SettlementApplication
from settlement.audit.verify import verify_chain
from settlement.ledger.chain import GENESIS
from settlement.service.scenario import marketplace_day
from support.ingest import commands_of

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture
def app(es_env: dict[str, str]) -> Iterator[SettlementApplication]:
    application = SettlementApplication(es_env)
    application.handle_batch(commands_of(marketplace_day(START, "a")))
    application.handle_batch(commands_of(marketplace_day(START, "b")))
    yield application
    application.close()


def positions(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT notification_id FROM settlement_events ORDER BY 1")
        return [r[0] for r in rows]


def sql(database_url: str, statement: str, *params: object) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(statement, params)


def test_intact_store_verifies_and_every_event_is_chained(
    app: SettlementApplication, database_url: str
) -> None:
    result = verify_chain(app)
    assert result.ok and result.first_bad_position is None
    assert result.events_checked == len(positions(database_url)) > 40
    with psycopg.connect(database_url) as conn:
        first = conn.execute("SELECT prev_hash FROM settlement_chain ORDER BY position LIMIT 1")
        assert first.fetchone() == (GENESIS,)


def test_edited_row_is_reported_at_its_position(app: SettlementApplication,
                                                database_url: str) -> None:
    target = positions(database_url)[17]
    sql(database_url, "UPDATE settlement_events SET state = convert_to(convert_from(state, "
        "'UTF8') || ' ', 'UTF8') WHERE notification_id = %s", target)
    result = verify_chain(app)
    assert not result.ok and result.first_bad_position == target


def test_deleted_row_is_reported_at_its_position(app: SettlementApplication,
                                                 database_url: str) -> None:
    target = positions(database_url)[30]
    sql(database_url, "DELETE FROM settlement_events WHERE notification_id = %s", target)
    result = verify_chain(app)
    assert not result.ok and result.first_bad_position == target


def test_swapped_rows_are_reported_at_the_first(app: SettlementApplication,
                                                database_url: str) -> None:
    first, second = positions(database_url)[5:7]
    sql(database_url, "UPDATE settlement_events SET notification_id = -1 "
        "WHERE notification_id = %s", first)
    sql(database_url, "UPDATE settlement_events SET notification_id = %s "
        "WHERE notification_id = %s", first, second)
    sql(database_url, "UPDATE settlement_events SET notification_id = %s "
        "WHERE notification_id = -1", second)
    result = verify_chain(app)
    assert not result.ok and result.first_bad_position == first


def test_chain_continues_across_batches_and_new_events_verify(app: SettlementApplication) -> None:
    app.handle_batch(commands_of(marketplace_day(START, "c")))
    assert verify_chain(app).ok
