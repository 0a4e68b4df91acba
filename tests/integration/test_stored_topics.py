"""Events stored before the restructure stay readable: rows written by the code at
88ff964 (`tests/fixtures/stored_events_88ff964.json`, made by the script beside it)
name their classes by the module paths of the time (`settlement.aggregates.events:…`).
Loaded into a fresh event store, every row decodes, every escrow folds to the
state the old code computed, the relay publishes them, and the aggregates take
new commands on top."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic

from settlement.application.app import APPLIED, SettlementApplication
from settlement.core.commands import Command
from settlement.relay.records import published

FIXTURE = Path(__file__).parents[1] / "fixtures" / "stored_events_88ff964.json"
OLD_MODULES = ("settlement.aggregates.events:", "settlement.payouts.events:")


@pytest.fixture(scope="module")
def stored() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


@pytest.fixture
def old_app(es_env: dict[str, str], database_url: str,
            stored: dict[str, Any]) -> Iterator[SettlementApplication]:
    app = SettlementApplication(es_env)
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            f"INSERT INTO {app.recorder.events_table_name} "  # the recorder's own table
            "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            [(r["originator_id"], r["originator_version"], r["topic"], r["state"].encode())
             for r in stored["rows"]])
    yield app
    app.close()


def test_the_fixture_names_only_the_old_modules(stored: dict[str, Any]) -> None:
    topics = {r["topic"] for r in stored["rows"]}
    assert len(topics) == 25 and all(t.startswith(OLD_MODULES) for t in topics)
    assert any('"originator_topic":"settlement.aggregates.escrow:Escrow"' in r["state"]
               for r in stored["rows"])


def test_every_stored_row_decodes_to_a_class_of_the_new_tree(
        old_app: SettlementApplication, stored: dict[str, Any]) -> None:
    notifications = old_app.recorder.select_notifications(start=1, limit=1000)
    assert len(notifications) == len(stored["rows"])
    for notification in notifications:
        event = old_app.mapper.to_domain_event(notification)
        assert get_topic(type(event)).startswith(("settlement.escrow.", "settlement.payouts."))


def test_escrows_fold_to_the_state_the_old_code_computed(
        old_app: SettlementApplication, stored: dict[str, Any]) -> None:
    for job_id, expected in stored["escrows"].items():
        escrow = old_app.escrow(job_id)
        assert escrow is not None and type(escrow).__module__ == "settlement.escrow.aggregate"
        assert {"state": escrow.state, "version": escrow.version,
                "funded": str(escrow.funded.amount), "released": str(escrow.released.amount),
                "refunded": str(escrow.refunded.amount), "fees": str(escrow.fees.amount),
                "withheld": str(escrow.withheld.amount),
                "items": {i.item_id: i.state for i in escrow.items.values()}} == expected


def test_the_relay_publishes_the_old_rows(old_app: SettlementApplication,
                                          stored: dict[str, Any]) -> None:
    notifications = old_app.recorder.select_notifications(start=1, limit=1000)
    events = [published(old_app.mapper, n) for n in notifications]
    openings = sum(r["topic"].endswith(":PartyPayoutsOpened") for r in stored["rows"])
    assert sum(e is None for e in events) == openings
    assert {e["type"] for e in events if e} >= {"settlement.project_contracted",
                                                "settlement.payout_settled"}


def test_old_aggregates_take_new_commands(old_app: SettlementApplication,
                                          stored: dict[str, Any]) -> None:
    at = datetime(2027, 1, 20, tzinfo=UTC)
    outcomes = old_app.handle_batch([
        Command.create("new-1", "project.milestone_added", at,
                       {"job_id": "b-project", "milestone_id": "m3",
                        "amount": {"amount": "10000", "currency": "JPY"}}),
        Command.create("new-2", "payout.settled", at,
                       {"payout_id": stored["payout_ids"][2], "bank_ref": "b3"}),
    ])
    assert [o.status for o in outcomes] == [APPLIED, APPLIED], [o.error for o in outcomes]
