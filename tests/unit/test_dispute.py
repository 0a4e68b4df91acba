"""Disputes (SPEC §2): any funded, not yet released item can be disputed; it is
frozen until the resolution splits its amount between worker and client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from moneyed import Money

from settlement.core.fees import FeePlan
from settlement.core.money import money
from settlement.core.movements import Refund, Release
from settlement.escrow import Escrow
from settlement.escrow import events as ev
from settlement.ledger.posting import Posting

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=365)  # past every inspection, approval and award deadline
REFUNDABLE = "liabilities:client_refundable:c1"
TAX = "liabilities:consumption_tax"
WORKER_FEES = "revenue:platform_fees:worker"


def jpy(amount: int) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def at(hours: int) -> dict[str, Any]:
    return {"causation_id": f"mkt-h{hours}", "at": T0 + timedelta(hours=hours)}


def project(plans: dict[str, FeePlan], journal: Journal, state: str = "funded",
            amount: int = 100_000, tax: int = 0, withholding: bool = False) -> Escrow:
    """A tiered-plan project whose milestone m1 is in `state`."""
    escrow = Escrow.contract_project(
        job_id="job-1", client_id="c1", worker_id="w1", plan=plans["tiered"],
        milestones=[("m1", jpy(amount), jpy(tax))], withholding=withholding,
        inspection_days=14, terms=None, causation_id="mkt-1", at=T0)
    if state != "contracted":
        escrow.fund_milestone("m1", jpy(amount), "pay-1", **at(1))
    if state in ("delivered", "released"):
        escrow.deliver_milestone("m1", **at(2))
    if state == "released":
        escrow.accept_milestone("m1", **at(3))
    journal.take(escrow)
    return escrow


def task(plans: dict[str, FeePlan], journal: Journal, quantity: int = 2) -> Escrow:
    """A tiered-plan task at 1,000 a unit with s1 pending (received at 2h)."""
    escrow = Escrow.open_task(
        job_id="task-1", client_id="c1", plan=plans["tiered"], unit_price=jpy(1_000),
        quantity=quantity, tax=jpy(0), approval_days=14, withholding=False, terms=None,
        causation_id="mkt-1", at=T0)
    escrow.fund_task(jpy(1_000 * quantity), "pay-1", **at(1))
    escrow.receive_submission("s1", "w1", **at(2))
    journal.take(escrow)
    return escrow


def competition(plans: dict[str, FeePlan], journal: Journal, guaranteed: bool = True) -> Escrow:
    """A tiered-plan competition, prize 100,000 funded, entries e1 (w1) and e2 (w2)."""
    escrow = Escrow.open_competition(
        job_id="comp-1", client_id="c1", plan=plans["tiered"], prize=jpy(100_000), tax=jpy(0),
        guaranteed=guaranteed, entry_deadline=T0 + timedelta(days=7),
        award_deadline=T0 + timedelta(days=14), min_entries=0, withholding=False,
        terms=None, causation_id="mkt-1", at=T0)
    escrow.fund_competition(jpy(100_000), "pay-1", **at(1))
    escrow.submit_entry("e1", "w1", **at(2))
    escrow.submit_entry("e2", "w2", **at(3))
    journal.take(escrow)
    return escrow


def disputed(escrow: Escrow, journal: Journal, item_id: str) -> Escrow:
    escrow.open_dispute(item_id, "client", "not as agreed", **at(50))
    journal.take(escrow)
    return escrow


# Opening a dispute ---------------------------------------------------------------


@pytest.mark.parametrize(("make", "item_id", "before"), [
    (lambda p, j: project(p, j, "funded"), "m1", "funded"),
    (lambda p, j: project(p, j, "delivered"), "m1", "delivered"),
    (task, "s1", "pending"),
    (competition, "e1", "entered"),
])
def test_a_funded_unreleased_item_can_be_disputed(plans: dict[str, FeePlan],
                                                  journal: Journal, make: Any, item_id: str,
                                                  before: str) -> None:
    escrow = make(plans, journal)
    held = escrow.held

    escrow.open_dispute(item_id, "worker", "unpaid extra work", **at(50))

    event = journal.one(escrow)
    assert isinstance(event, ev.DisputeOpened)
    assert (event.item_id, event.opened_by, event.reason, event.postings) == (
        item_id, "worker", "unpaid extra work", [])
    assert escrow.items[item_id].state == "disputed"
    assert escrow.disputes == {item_id: before}
    assert escrow.held == held  # money stays in escrow, frozen


@pytest.mark.parametrize(("make", "item_id"), [
    (lambda p, j: project(p, j, "contracted"), "m1"),
    (lambda p, j: project(p, j, "released"), "m1"),
])
def test_unfunded_or_released_milestones_are_not_disputable(
        plans: dict[str, FeePlan], journal: Journal, make: Any, item_id: str) -> None:
    escrow = make(plans, journal)
    journal.rejects(escrow, "item_not_disputable",
                    lambda: escrow.open_dispute(item_id, "client", "x", **at(50)))


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_decided_submissions_are_not_disputable(plans: dict[str, FeePlan], journal: Journal,
                                                decide: str) -> None:
    escrow = task(plans, journal)
    if decide == "approve":
        escrow.approve_submission("s1", **at(5))
    else:
        escrow.reject_submission("s1", "no", **at(5))
    journal.rejects(escrow, "item_not_disputable",
                    lambda: escrow.open_dispute("s1", "worker", "x", **at(50)))


def test_entries_of_an_awarded_competition_are_not_disputable(plans: dict[str, FeePlan],
                                                              journal: Journal) -> None:
    escrow = competition(plans, journal)
    escrow.award([("e1", jpy(100_000))], **at(10))
    for entry in ("e1", "e2"):  # released, and the unawarded one of a settled prize
        journal.rejects(escrow, "item_not_disputable",
                        lambda entry=entry: escrow.open_dispute(entry, "worker", "x", **at(50)))


@pytest.mark.parametrize(("item_id", "opened_by", "code"), [
    ("m1", "platform", "invalid_party"),
    ("m1", "", "invalid_party"),
    ("m9", "client", "unknown_item"),
])
def test_invalid_disputes_are_rejected(plans: dict[str, FeePlan], journal: Journal,
                                       item_id: str, opened_by: str, code: str) -> None:
    escrow = project(plans, journal)
    journal.rejects(escrow, code,
                    lambda: escrow.open_dispute(item_id, opened_by, "x", **at(50)))


def test_an_item_is_disputed_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = disputed(project(plans, journal), journal, "m1")
    journal.rejects(escrow, "item_disputed",
                    lambda: escrow.open_dispute("m1", "worker", "me too", **at(51)))


def test_a_disputed_competition_takes_no_second_dispute(plans: dict[str, FeePlan],
                                                        journal: Journal) -> None:
    escrow = disputed(competition(plans, journal), journal, "e1")
    journal.rejects(escrow, "item_disputed",
                    lambda: escrow.open_dispute("e2", "worker", "x", **at(51)))


# A disputed item is frozen -------------------------------------------------------


FROZEN: list[tuple[Callable[..., Escrow], str, Callable[[Escrow], object]]] = [
    (lambda p, j: project(p, j, "delivered"), "m1",
     lambda e: e.accept_milestone("m1", **at(60))),
    (lambda p, j: project(p, j, "delivered"), "m1",
     lambda e: e.request_revision("m1", "x", **at(60))),
    (lambda p, j: project(p, j, "funded"), "m1",
     lambda e: e.cancel_milestone("m1", "x", **at(60))),
    (lambda p, j: project(p, j, "funded"), "m1",
     lambda e: e.deliver_milestone("m1", **at(60))),
    (lambda p, j: project(p, j, "funded"), "m1",
     lambda e: e.fund_milestone("m1", jpy(100_000), "p", **at(60))),
    (task, "s1", lambda e: e.approve_submission("s1", **at(60))),
    (task, "s1", lambda e: e.reject_submission("s1", "x", **at(60))),
    (competition, "e1", lambda e: e.award([("e2", jpy(100_000))], **at(60))),
    (lambda p, j: competition(p, j, guaranteed=False), "e1",
     lambda e: e.cancel_competition("x", **at(60))),
    (competition, "e1", lambda e: e.submit_entry("e3", "w3", **at(60))),
]


@pytest.mark.parametrize(("make", "item_id", "command"), FROZEN)
def test_a_disputed_item_refuses_every_decision(plans: dict[str, FeePlan], journal: Journal,
                                                make: Any, item_id: str, command: Any) -> None:
    escrow = disputed(make(plans, journal), journal, item_id)
    journal.rejects(escrow, "item_disputed", lambda: command(escrow))


@pytest.mark.parametrize(("make", "item_id"), [
    (lambda p, j: project(p, j, "delivered"), "m1"),
    (task, "s1"),
    (competition, "e1"),
])
def test_a_disputed_item_gets_no_automatic_action(plans: dict[str, FeePlan],
                                                  journal: Journal, make: Any,
                                                  item_id: str) -> None:
    escrow = make(plans, journal)
    assert escrow.due_timers(LATER) != []  # undisputed, the timer would act
    disputed(escrow, journal, item_id)

    assert escrow.due_timers(LATER) == []
    assert escrow.run_timers(LATER) == []
    assert escrow.collect_events() == []


def test_a_disputed_submission_keeps_its_slot(plans: dict[str, FeePlan],
                                              journal: Journal) -> None:
    escrow = disputed(task(plans, journal, quantity=1), journal, "s1")
    journal.rejects(escrow, "quantity_exceeded",
                    lambda: escrow.receive_submission("s2", "w2", **at(60)))


# Resolution ----------------------------------------------------------------------


def test_resolution_releases_the_worker_part_and_refunds_the_client_part(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = disputed(project(plans, journal, "delivered"), journal, "m1")

    escrow.resolve_dispute("m1", jpy(60_000), jpy(40_000), **at(70))

    event = journal.one(escrow)
    assert isinstance(event, ev.DisputeResolved)
    # Worker 60,000: fee 20 % = 12,000, tax 1,200, net 46,800. Client 40,000 refunded.
    assert event.release == Release("m1", "w1", jpy(60_000), jpy(12_000), jpy(1_200), jpy(0),
                                    jpy(46_800))
    assert event.refund == Refund("m1", jpy(40_000))
    assert event.postings == [
        Posting("liabilities:escrow:job-1", "debit", jpy(60_000)),
        Posting("liabilities:worker_payable:w1", "credit", jpy(46_800)),
        Posting(WORKER_FEES, "credit", jpy(12_000)),
        Posting(TAX, "credit", jpy(1_200)),
        Posting("liabilities:escrow:job-1", "debit", jpy(40_000)),
        Posting(REFUNDABLE, "credit", jpy(40_000)),
    ]
    assert escrow.items["m1"].state == "resolved"
    assert escrow.disputes == {}
    assert (escrow.held, escrow.released, escrow.refunded) == (jpy(0), jpy(60_000), jpy(40_000))
    assert escrow.released_to == {"w1": jpy(60_000)}


def test_resolution_withholds_on_the_worker_part(plans: dict[str, FeePlan],
                                                 journal: Journal) -> None:
    escrow = disputed(project(plans, journal, amount=110_000, tax=10_000, withholding=True),
                      journal, "m1")

    escrow.resolve_dispute("m1", jpy(55_000), jpy(55_000), **at(70))

    event = journal.one(escrow)
    # Worker 55,000: tax share floor(10,000 × 55,000 / 110,000) = 5,000, base 50,000,
    # W = floor(50,000 × 0.1021) = 5,105; fee 11,000, tax 1,100;
    # net 55,000 − 11,000 − 1,100 − 5,105 = 37,795.
    assert event.release == Release("m1", "w1", jpy(55_000), jpy(11_000), jpy(1_100),
                                    jpy(5_105), jpy(37_795))
    assert Posting("liabilities:withholding_tax:c1", "credit", jpy(5_105)) in event.postings
    assert escrow.withheld == jpy(5_105)


def test_all_to_the_client_is_a_full_refund(plans: dict[str, FeePlan],
                                            journal: Journal) -> None:
    escrow = disputed(project(plans, journal), journal, "m1")

    escrow.resolve_dispute("m1", jpy(0), jpy(100_000), **at(70))

    event = journal.one(escrow)
    assert (event.release, event.refund) == (None, Refund("m1", jpy(100_000)))
    assert event.postings == [Posting("liabilities:escrow:job-1", "debit", jpy(100_000)),
                              Posting(REFUNDABLE, "credit", jpy(100_000))]
    assert (escrow.released_to, escrow.fees) == ({}, jpy(0))


def test_all_to_the_worker_is_a_full_release(plans: dict[str, FeePlan],
                                             journal: Journal) -> None:
    escrow = disputed(project(plans, journal), journal, "m1")

    escrow.resolve_dispute("m1", jpy(100_000), jpy(0), **at(70))

    event = journal.one(escrow)
    # 20 % of 100,000 = 20,000, tax 2,000, net 78,000.
    assert event.release == Release("m1", "w1", jpy(100_000), jpy(20_000), jpy(2_000), jpy(0),
                                    jpy(78_000))
    assert event.refund is None
    assert escrow.refunded == jpy(0)


def test_resolving_a_submission_of_a_closed_task(plans: dict[str, FeePlan],
                                                 journal: Journal) -> None:
    escrow = disputed(task(plans, journal, quantity=2), journal, "s1")
    escrow.close_task(**at(60))
    # 2 slots − 1 disputed = 1 free: 1,000 refunded at close, s1 stays reserved.
    assert journal.one(escrow).refund == Refund("capacity", jpy(1_000))

    escrow.resolve_dispute("s1", jpy(500), jpy(500), **at(70))

    event = journal.one(escrow)
    # Worker 500: fee 100, tax 10, net 390.
    assert event.release == Release("s1", "w1", jpy(500), jpy(100), jpy(10), jpy(0), jpy(390))
    assert event.refund == Refund("s1", jpy(500))
    assert (escrow.held, escrow.refunded) == (jpy(0), jpy(1_500))


def test_resolving_an_entry_splits_the_whole_prize(plans: dict[str, FeePlan],
                                                   journal: Journal) -> None:
    escrow = disputed(competition(plans, journal), journal, "e1")

    escrow.resolve_dispute("e1", jpy(30_000), jpy(70_000), **at(70))

    event = journal.one(escrow)
    # To e1's worker 30,000: fee 6,000, tax 600, net 23,400; 70,000 back to the client.
    assert event.release == Release("e1", "w1", jpy(30_000), jpy(6_000), jpy(600), jpy(0),
                                    jpy(23_400))
    assert event.refund == Refund("e1", jpy(70_000))
    assert (escrow.state, escrow.held) == ("resolved", jpy(0))
    assert (escrow.items["e1"].state, escrow.items["e1"].amount) == ("resolved", jpy(30_000))
    # The prize is settled: the competition is closed.
    journal.rejects(escrow, "job_closed",
                    lambda: escrow.award([("e2", jpy(100_000))], **at(71)))
    assert escrow.due_timers(LATER) == []


@pytest.mark.parametrize(("worker", "client", "code"), [
    (jpy(60_000), jpy(39_999), "amount_mismatch"),
    (jpy(60_000), jpy(40_001), "amount_mismatch"),
    (jpy(0), jpy(0), "amount_mismatch"),
    (Money(-1, "JPY"), jpy(100_001), "amount_not_positive"),
    (money(Decimal(60_000), "USD"), jpy(40_000), "currency_mismatch"),
    (jpy(60_000), money(Decimal(40_000), "USD"), "currency_mismatch"),
])
def test_the_split_must_be_exactly_the_item_amount(plans: dict[str, FeePlan],
                                                   journal: Journal, worker: Money,
                                                   client: Money, code: str) -> None:
    escrow = disputed(project(plans, journal), journal, "m1")
    journal.rejects(escrow, code, lambda: escrow.resolve_dispute("m1", worker, client, **at(70)))


def test_an_entry_split_is_checked_against_the_prize(plans: dict[str, FeePlan],
                                                     journal: Journal) -> None:
    escrow = disputed(competition(plans, journal), journal, "e1")
    # An entry's own amount is 0; the split must cover the 100,000 prize.
    journal.rejects(escrow, "amount_mismatch",
                    lambda: escrow.resolve_dispute("e1", jpy(0), jpy(0), **at(70)))
    journal.rejects(escrow, "amount_mismatch",
                    lambda: escrow.resolve_dispute("e1", jpy(50_000), jpy(0), **at(70)))


@pytest.mark.parametrize(("item_id", "code"), [
    ("m1", "item_not_disputed"),
    ("m9", "unknown_item"),
])
def test_only_a_disputed_item_is_resolved(plans: dict[str, FeePlan], journal: Journal,
                                          item_id: str, code: str) -> None:
    escrow = project(plans, journal)
    journal.rejects(escrow, code,
                    lambda: escrow.resolve_dispute(item_id, jpy(0), jpy(100_000), **at(70)))


def test_a_resolved_item_is_not_resolved_again(plans: dict[str, FeePlan],
                                               journal: Journal) -> None:
    escrow = disputed(project(plans, journal), journal, "m1")
    escrow.resolve_dispute("m1", jpy(0), jpy(100_000), **at(70))

    journal.rejects(escrow, "item_not_disputed",
                    lambda: escrow.resolve_dispute("m1", jpy(0), jpy(100_000), **at(71)))
    journal.rejects(escrow, "item_not_disputable",
                    lambda: escrow.open_dispute("m1", "worker", "again", **at(71)))
