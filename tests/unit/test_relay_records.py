"""Stored escrow events as `settlement.events` records (SPEC §4), and the relay's figures."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Mapper,
    Notification,
    UUIDAsHex,
)

from settlement.application import handlers
from settlement.core.commands import Command
from settlement.core.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.escrow import Escrow
from settlement.relay.cloudevents import stored_cloud_event, to_cloud_event
from settlement.relay.records import RECORD_BYTES_MAX, RecordTooLarge, published, to_record
from settlement.relay.stats import RelayStats, rate
from settlement.service.scenario import marketplace_day
from settlement.store.transcodings import OrjsonTranscoder, register
from support.projections import Timers, rich_day

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


# Stored events straight to the wire (the relay's and the rebuild's path)


def mapper() -> Mapper[Any]:
    """The event store's mapper: the application's transcoder and transcodings."""
    transcoder = OrjsonTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register(transcoder)
    return Mapper(transcoder=transcoder)


def rich_events() -> list[Any]:
    """Every kind of escrow event: a rich day with amendments, disputes and timers."""
    plans = load_fee_plans(DEFAULT_FEE_PLANS)
    escrows: dict[str, Escrow] = {}
    out: list[Any] = []
    for step in rich_day(START, "r"):
        if isinstance(step, Timers):
            escrow = escrows[step.job_id]
            escrow.run_timers(step.now)
        else:
            command = Command.create(step["id"], step["type"],
                                     datetime.fromisoformat(step["time"]), step["data"])
            escrow = handlers.apply(escrows.get(command.job_id), command, plans)
        escrows[escrow.job_id] = escrow
        out += escrow.collect_events()
    return out


def test_a_stored_escrow_event_maps_straight_to_its_cloud_event() -> None:
    events, stored_mapper = rich_events(), mapper()
    assert len({type(e) for e in events}) >= 15  # every format's events, timers' too
    for position, event in enumerate(events, start=3):
        stored = stored_mapper.to_stored_event(event)
        notification = Notification(id=position, originator_id=stored.originator_id,
                                    originator_version=stored.originator_version,
                                    topic=stored.topic, state=stored.state)
        chain = (f"{position:064x}", f"{position - 1:064x}")
        expected = to_cloud_event(position, stored_mapper.to_domain_event(stored), chain)
        direct = stored_cloud_event(position, stored.topic, stored.originator_version,
                                    stored.state, chain)
        assert direct == expected
        assert orjson.loads(orjson.dumps(direct)) == direct  # nothing JSON would change
        assert published(stored_mapper, notification, chain) == expected
        assert (direct["data"]["hash"], direct["data"]["prev_hash"]) == chain


def test_the_direct_path_leaves_what_it_does_not_know_to_the_domain_event() -> None:
    stored_mapper = mapper()
    [created] = Aggregate().collect_events()
    stored = stored_mapper.to_stored_event(created)
    assert stored_cloud_event(1, stored.topic, 1, stored.state) is None
    assert published(stored_mapper, Notification(
        id=1, originator_id=stored.originator_id, originator_version=1, topic=stored.topic,
        state=stored.state)) is None
    opened = stored_mapper.to_stored_event(escrow_events(marketplace_day(START, "o"))[0])
    unknown = opened.state.replace(b'"_type_":"money"', b'"_type_":"mystery"', 1)
    assert stored_cloud_event(1, opened.topic, 1, unknown) is None
    assert stored_cloud_event(1, opened.topic, 1, b"not json") is None


def test_without_a_chain_row_the_event_carries_no_hashes() -> None:
    event = escrow_events(marketplace_day(START, "h"))[1]
    assert not {"hash", "prev_hash"} & to_cloud_event(9, event)["data"].keys()
    record = to_record(9, event, ("a" * 64, "b" * 64))
    assert record is not None
    assert orjson.loads(record.value)["data"]["hash"] == "a" * 64
