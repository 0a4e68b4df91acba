"""Stored escrow events as `settlement.events` records (SPEC §4), and the relay's figures."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from eventsourcing.domain import Aggregate

from settlement import handlers
from settlement.aggregates import Escrow
from settlement.commands import Command
from settlement.events_out import to_cloud_event
from settlement.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.relay.records import RECORD_BYTES_MAX, RecordTooLarge, to_record
from settlement.relay.stats import RelayStats, rate
from settlement.scenario import marketplace_day

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


def escrow_events(events: list[dict[str, Any]]) -> list[Any]:
    plans = load_fee_plans(DEFAULT_FEE_PLANS)
    escrows: dict[str, Escrow] = {}
    out: list[Any] = []
    for e in events:
        command = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
        escrows[command.job_id] = handlers.apply(escrows.get(command.job_id), command, plans)
        out += escrows[command.job_id].collect_events()
    return out


def test_every_escrow_event_becomes_its_cloud_event_keyed_by_job() -> None:
    events = escrow_events(marketplace_day(START, "u"))
    for position, event in enumerate(events, start=7):
        record = to_record(position, event)
        assert record is not None
        assert record.position == position
        assert record.key == event.job_id.encode("utf-8")
        assert orjson.loads(record.value) == to_cloud_event(position, event)
        assert b" " not in record.value.split(b'"data"')[0]  # compact JSON


def test_the_record_carries_the_spec_fields_and_balanced_postings() -> None:
    funded = escrow_events(marketplace_day(START, "f"))[1]
    record = to_record(42, funded)
    assert record is not None
    value = orjson.loads(record.value)
    assert (value["id"], value["type"]) == ("settlement-42", "settlement.milestone_funded")
    data = value["data"]
    assert (data["job_id"], data["position"], data["version"], data["causation_id"]) == (
        "f-project", 42, 2, "f-0002")
    assert data["funding"]["payment_ref"] == "pay-1"
    sides = {"debit": Decimal(0), "credit": Decimal(0)}
    for posting in data["postings"]:
        sides[posting["side"]] += Decimal(posting["amount"])
    assert sides == {"debit": Decimal(110_000), "credit": Decimal(110_000)}


def test_events_of_other_aggregates_are_not_published() -> None:
    [created] = Aggregate().collect_events()
    assert to_record(3, created) is None


def test_an_event_above_the_record_limit_is_refused() -> None:
    # Commands refuse terms this large; the relay's own limit is the last line of defence.
    opened = escrow_events(marketplace_day(START, "big")[:1])[0]
    opened = dataclasses.replace(opened, terms={"scope": "x" * RECORD_BYTES_MAX})
    with pytest.raises(RecordTooLarge, match="position 5"):
        to_record(5, opened)


@pytest.mark.parametrize(("head", "position", "lag"), [(10, 4, 6), (4, 4, 0), (0, 3, 0)])
def test_lag_is_what_is_stored_but_not_yet_published(head: int, position: int, lag: int) -> None:
    assert RelayStats(head=head, position=position).lag == lag


def test_events_per_second_over_the_time_batches_took() -> None:
    stats = RelayStats(published=500, first_batch_at=10.0, last_batch_at=12.5)
    assert stats.events_per_s == 200.0
    assert stats.as_dict()["events_per_s"] == 200.0
    assert RelayStats(published=0).events_per_s == 0.0
    assert rate(5, 0.0) == 0.0 and rate(5, -1.0) == 0.0
