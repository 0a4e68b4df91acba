"""Audit rows: the event as published, in order; the hash chain's seam; and the
envelope every projection reads."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from settlement.core.fees import FeePlan
from settlement.projections.model.audit import AuditRow, audit_row
from settlement.projections.model.envelope import parse
from settlement.projections.model.errors import MalformedEvent
from settlement.service.scenario import marketplace_day
from support.projections import cloud_events, find

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def day(plans: dict[str, FeePlan]) -> list[dict]:
    return cloud_events(marketplace_day(START, "d"), plans)


def test_audit_row_keeps_the_event_data_whole(day: list[dict]) -> None:
    event = find(day, "milestone_released", "d-project")
    assert audit_row(parse(event)) == AuditRow(
        position=7, job_id="d-project", version=7, type="settlement.milestone_released",
        time=datetime(2026, 11, 26, 9, 7, tzinfo=UTC), causation_id="d-0007",
        data=event["data"], hash=None, prev_hash=None)


def test_chain_fields_in_the_data_go_to_their_own_columns(day: list[dict]) -> None:
    event = find(day, "task_closed", "d-task")
    plain = audit_row(parse(event))
    published = copy.deepcopy(event)
    published["data"].update(hash="ab" * 32, prev_hash="cd" * 32)
    chained = audit_row(parse(published))
    assert (chained.hash, chained.prev_hash) == ("ab" * 32, "cd" * 32)
    assert chained.data == plain.data and "hash" not in chained.data


def test_envelope_names_the_event(day: list[dict]) -> None:
    event = parse(find(day, "dispute_opened", "d-project"))
    assert (event.name, event.position, event.version, event.job_id) == (
        "dispute_opened", 9, 9, "d-project")


@pytest.mark.parametrize("breakage", [
    lambda e: e["data"].pop("position"),
    lambda e: e["data"].update(version="9"),
    lambda e: e["data"].update(position=0),
    lambda e: e.update(type="marketplace.dispute_opened"),
    lambda e: e.update(time="2026-11-26T09:09:00"),  # no timezone
    lambda e: e.update(time="yesterday"),
    lambda e: e.pop("data"),
])
def test_an_event_without_a_settlement_envelope_is_malformed(day: list[dict], breakage) -> None:
    event = copy.deepcopy(find(day, "dispute_opened", "d-project"))
    breakage(event)
    with pytest.raises(MalformedEvent):
        parse(event)
