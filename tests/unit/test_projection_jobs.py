"""The per-job fold: the escrow as its events describe it, equal to the aggregate
that emitted them, whatever the batching; repeats and gaps told apart."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from settlement.core.fees import FeePlan
from settlement.escrow import Escrow
from settlement.projections.model.audit import audit_row
from settlement.projections.model.changes import Changes, fold, is_repeat, project
from settlement.projections.model.envelope import parse
from settlement.projections.model.errors import InvariantBroken, UnknownEventType, VersionGap
from settlement.projections.model.jobs import evolve, item_ids
from settlement.projections.model.ledger import entries
from settlement.projections.model.views import ItemView, JobView
from support.projections import find, rich_day, run

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(plans: dict[str, FeePlan]) -> tuple[list[dict], dict[str, Escrow]]:
    return run(rich_day(START, "r"), plans)


def fold_in_batches(events: list[dict], size: int) -> tuple[dict[str, JobView],
                                                             dict[tuple[str, str], ItemView]]:
    """What a store would hold after folding `events` `size` at a time."""
    jobs: dict[str, JobView] = {}
    items: dict[tuple[str, str], ItemView] = {}
    for n in range(0, len(events), size):
        batch = [parse(e) for e in events[n:n + size]]
        changes = fold(batch, jobs, items)
        jobs.update(changes.jobs)
        items.update(changes.items)
    return jobs, items


def aggregate_view(escrow: Escrow) -> dict[str, Any]:
    return {
        "format": escrow.format, "state": escrow.state, "version": escrow.version,
        "client_id": escrow.client_id, "currency": escrow.currency,
        "funded": escrow.funded.amount, "held": escrow.held.amount,
        "released": escrow.released.amount, "refunded": escrow.refunded.amount,
        "fees": escrow.fees.amount, "withheld": escrow.withheld.amount,
        "items": {i.item_id: (i.kind, i.state, i.amount.amount, i.worker_id, i.delivered_at)
                  for i in escrow.items.values()},
    }


def folded_view(job: JobView, items: dict[tuple[str, str], ItemView]) -> dict[str, Any]:
    return {
        "format": job.format, "state": job.state, "version": job.version,
        "client_id": job.client_id, "currency": job.currency, "funded": job.funded,
        "held": job.held, "released": job.released, "refunded": job.refunded, "fees": job.fees,
        "withheld": job.withheld,
        "items": {i.item_id: (i.kind, i.state, i.amount, i.worker_id, i.delivered_at)
                  for (job_id, _), i in items.items() if job_id == job.job_id},
    }


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_folded_views_equal_the_aggregates_that_emitted_the_events(
    history: tuple[list[dict], dict[str, Escrow]], batch_size: int
) -> None:
    events, escrows = history
    jobs, items = fold_in_batches(events, batch_size)
    assert sorted(jobs) == sorted(escrows)
    for job_id, escrow in escrows.items():
        assert folded_view(jobs[job_id], items) == aggregate_view(escrow), job_id


def test_released_items_carry_gross_and_net(history: tuple[list[dict], dict]) -> None:
    _, items = fold_in_batches(history[0], 50)
    m1 = items[("r-project", "m1")]
    assert (m1.state, m1.released, m1.net) == ("released", Decimal("110000"), Decimal("76690"))
    resolved = items[("r-project", "m2")]  # 30,000 of 55,000 to the worker
    assert (resolved.state, resolved.amount, resolved.released) == (
        "resolved", Decimal("55000"), Decimal("30000"))
    entry = items[("r-split", "e2")]  # a competition entry takes the worker part as its amount
    assert (entry.state, entry.amount, entry.released, entry.net) == (
        "resolved", Decimal("60000"), Decimal("60000"), Decimal("40674"))
    assert items[("r-split", "e1")].amount == 0


def test_the_view_survives_its_json_form(history: tuple[list[dict], dict]) -> None:
    jobs, _ = fold_in_batches(history[0], 1000)
    for job in jobs.values():
        assert JobView.from_json(job.to_json()) == job
    assert jobs["r-usd"].to_json()["funded"] == "150.50"
    assert jobs["r-tasks"].unit_price == Decimal("1000")


def test_a_repeat_is_recognised_by_version_and_changes_nothing(
    history: tuple[list[dict], dict]
) -> None:
    events = history[0][:5]
    jobs, items = fold_in_batches(events, 5)
    again = fold([parse(e) for e in events], jobs, items)
    assert again.duplicates == 5 and again.applied == 0
    assert again == Changes(duplicates=5)


def test_a_missing_predecessor_is_a_gap(history: tuple[list[dict], dict]) -> None:
    events = [parse(e) for e in history[0]]
    jobs, _ = fold_in_batches(history[0][:2], 10)
    assert not is_repeat(jobs["r-project"], events[2])
    with pytest.raises(VersionGap):
        project(jobs["r-project"], {}, events[3])
    with pytest.raises(VersionGap):
        project(None, {}, events[1])


def test_an_event_type_nobody_folds_stops_the_projection(history: tuple[list[dict], dict]) -> None:
    event = copy.deepcopy(find(history[0], "milestone_delivered", "r-project"))
    event["type"] = "settlement.milestone_teleported"
    jobs, items = fold_in_batches(history[0][:3], 10)
    with pytest.raises(UnknownEventType):
        evolve(jobs["r-project"], {}, parse(event))


def test_an_unknown_item_or_a_second_opening_breaks_an_invariant(
    history: tuple[list[dict], dict]
) -> None:
    events = [parse(e) for e in history[0]]
    jobs, _ = fold_in_batches(history[0][:1], 10)
    with pytest.raises(InvariantBroken):
        evolve(jobs["r-project"], {}, events[1])  # funding m1, which was not read
    with pytest.raises(InvariantBroken):
        evolve(jobs["r-project"], {}, events[0])


def test_item_ids_name_every_item_an_event_touches(history: tuple[list[dict], dict]) -> None:
    events = history[0]
    assert item_ids(parse(find(events, "project_contracted", "r-project"))) == {"m1", "m2"}
    assert item_ids(parse(find(events, "milestone_funded", "r-project"))) == {"m1"}
    assert item_ids(parse(find(events, "competition_awarded", "r-contest"))) == {"e1", "e2"}
    assert item_ids(parse(find(events, "dispute_resolved", "r-split"))) == {"e2"}
    assert item_ids(parse(find(events, "task_closed", "r-tasks"))) == {"capacity"}


def test_events_of_unknown_streams_are_refused() -> None:
    # An event no projection folds (a newer producer's) has no job: ledger and audit
    # rows are generic, but no view folds it, so the projection stops rather than skip money.
    payout = parse({
        "specversion": "1.0", "id": "settlement-900", "source": "settlement",
        "type": "settlement.payout_rerouted", "subject": "po-1",
        "time": "2026-12-01T00:00:00+00:00", "datacontenttype": "application/json",
        "data": {"payout_id": "po-1", "position": 900, "version": 2, "causation_id": "run-1",
                 "postings": [
                     {"account": "liabilities:worker_payable:w1", "side": "debit",
                      "amount": "8580", "currency": "JPY"},
                     {"account": "liabilities:payouts_in_transit", "side": "credit",
                      "amount": "8580", "currency": "JPY"}]}})
    assert payout.job_id is None
    assert [e.account for e in entries(payout)] == ["liabilities:worker_payable:w1",
                                                     "liabilities:payouts_in_transit"]
    assert audit_row(payout).job_id is None
    with pytest.raises(UnknownEventType, match="settlement.payout_rerouted"):
        fold([payout], {}, {})
