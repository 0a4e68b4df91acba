"""Task escrows (SPEC §2): `unit_price × quantity` deposited, submissions approved
or rejected, capacity, closing, and auto-approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from moneyed import Money

from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan
from settlement.core.money import money, zero
from settlement.core.movements import Funding, Refund, Release
from settlement.escrow import Escrow
from settlement.escrow import events as ev
from settlement.ledger.posting import Posting

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CASH = "assets:safeguarded_cash"
ESCROW = "liabilities:escrow:task-1"
REFUNDABLE = "liabilities:client_refundable:c1"
TAX = "liabilities:consumption_tax"
WORKER_FEES = "revenue:platform_fees:worker"
CLIENT_FEES = "revenue:platform_fees:client"


def jpy(amount: int) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def usd(amount: str) -> Money:
    return money(Decimal(amount), "USD", allow_zero=True)


def payable(worker: str) -> str:
    return f"liabilities:worker_payable:{worker}"


def open_task(plan: FeePlan, unit_price: Money | None = None, quantity: int = 3,
              approval_days: int = 14, tax: Money | None = None) -> Escrow:
    return Escrow.open_task(
        job_id="task-1", client_id="c1", plan=plan, unit_price=unit_price or jpy(1_000),
        quantity=quantity, tax=tax or zero(plan.currency), approval_days=approval_days,
        withholding=False, terms=None, causation_id="mkt-1", at=T0,
    )


def at(hours: int) -> dict[str, Any]:
    return {"causation_id": f"mkt-h{hours}", "at": T0 + timedelta(hours=hours)}


def funded(plan: FeePlan, journal: Journal, submissions: list[tuple[str, str]] = (),
           **kwargs: Any) -> Escrow:
    """A funded task (tiered plan: no client fee) with the given pending submissions."""
    escrow = open_task(plan, **kwargs)
    escrow.fund_task(escrow.unit_price * escrow.quantity, "pay-1", **at(1))
    for n, (submission_id, worker_id) in enumerate(submissions):
        escrow.receive_submission(submission_id, worker_id, **at(2 + n))
    journal.take(escrow)
    return escrow


# Opening and funding -------------------------------------------------------------


def test_open_records_the_capacity(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = open_task(plans["tiered"], quantity=5, approval_days=3)

    opened = journal.one(escrow)

    assert isinstance(opened, ev.TaskOpened)
    assert (opened.unit_price, opened.quantity, opened.approval_days, opened.postings) == (
        jpy(1_000), 5, 3, [])
    assert (escrow.format, escrow.state, escrow.slots_taken) == ("task", "opened", 0)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"quantity": 0}, "quantity_invalid"),
    ({"quantity": 100_001}, "quantity_invalid"),
    ({"unit_price": usd("10")}, "currency_mismatch"),
    ({"tax": usd("1")}, "currency_mismatch"),
    ({"tax": jpy(1_001)}, "tax_exceeds_amount"),
])
def test_invalid_openings_are_rejected(plans: dict[str, FeePlan], kwargs: dict[str, Any],
                                       code: str) -> None:
    with pytest.raises(Rejected) as refused:
        open_task(plans["tiered"], **kwargs)
    assert refused.value.code == code


def test_quantity_bounds_are_inclusive(plans: dict[str, FeePlan]) -> None:
    assert open_task(plans["tiered"], quantity=1).quantity == 1
    assert open_task(plans["tiered"], quantity=100_000).quantity == 100_000


def test_fund_deposits_unit_price_times_quantity_plus_client_fee(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = open_task(plans["flat"], quantity=10)
    journal.take(escrow)

    # 1,000 × 10 = 10,000; client fee 5.5 % tax-included = 550 = fee 500 + tax
    # floor(550 × 0.1 / 1.1) = 50; payment 10,550.
    escrow.fund_task(jpy(10_550), "pay-1", **at(1))

    event = journal.one(escrow)
    assert isinstance(event, ev.TaskFunded)
    assert event.funding == Funding("capacity", jpy(10_000), jpy(500), jpy(50), "pay-1")
    assert event.postings == [
        Posting(CASH, "debit", jpy(10_550)),
        Posting(ESCROW, "credit", jpy(10_000)),
        Posting(CLIENT_FEES, "credit", jpy(500)),
        Posting(TAX, "credit", jpy(50)),
    ]
    assert (escrow.state, escrow.held, escrow.fees) == ("funded", jpy(10_000), jpy(550))


@pytest.mark.parametrize(("paid", "code"), [
    (jpy(10_000), "amount_mismatch"),  # the client fee is missing
    (jpy(10_549), "amount_mismatch"),
    (usd("10550"), "currency_mismatch"),
])
def test_funding_must_be_the_capacity_plus_fee(plans: dict[str, FeePlan], journal: Journal,
                                               paid: Money, code: str) -> None:
    escrow = open_task(plans["flat"], quantity=10)
    journal.rejects(escrow, code, lambda: escrow.fund_task(paid, "pay-1", **at(1)))


def test_a_task_is_funded_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)
    journal.rejects(escrow, "task_already_funded",
                    lambda: escrow.fund_task(jpy(3_000), "pay-2", **at(9)))


# Submissions ---------------------------------------------------------------------


def test_a_submission_takes_a_slot(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)

    escrow.receive_submission("s1", "w1", **at(5))

    event = journal.one(escrow)
    assert isinstance(event, ev.SubmissionReceived)
    assert (event.submission_id, event.worker_id, event.postings) == ("s1", "w1", [])
    item = escrow.items["s1"]
    assert (item.kind, item.state, item.amount, item.worker_id, item.delivered_at) == (
        "submission", "pending", jpy(1_000), "w1", T0 + timedelta(hours=5))
    assert escrow.slots_taken == 1


def test_submissions_before_funding_are_refused(plans: dict[str, FeePlan],
                                                journal: Journal) -> None:
    escrow = open_task(plans["tiered"])
    journal.rejects(escrow, "task_not_funded",
                    lambda: escrow.receive_submission("s1", "w1", **at(1)))


def test_a_submission_id_is_used_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")])
    journal.rejects(escrow, "duplicate_item",
                    lambda: escrow.receive_submission("s1", "w2", **at(9)))


def test_approve_releases_the_unit_price(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")])

    escrow.approve_submission("s1", **at(9))

    event = journal.one(escrow)
    assert isinstance(event, ev.SubmissionApproved)
    # 20 % of 1,000 = 200, tax 20, net 780.
    assert event.release == Release("s1", "w1", jpy(1_000), jpy(200), jpy(20), jpy(0), jpy(780))
    assert event.automatic is False
    assert event.postings == [
        Posting(ESCROW, "debit", jpy(1_000)),
        Posting(payable("w1"), "credit", jpy(780)),
        Posting(WORKER_FEES, "credit", jpy(200)),
        Posting(TAX, "credit", jpy(20)),
    ]
    assert escrow.items["s1"].state == "released"
    assert (escrow.held, escrow.released, escrow.slots_taken) == (jpy(2_000), jpy(1_000), 1)


def test_approvals_run_the_worker_fee_tiers_cumulatively(plans: dict[str, FeePlan],
                                                         journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1"), ("s2", "w1")],
                    unit_price=jpy(60_000), quantity=2)

    escrow.approve_submission("s1", **at(9))
    escrow.approve_submission("s2", **at(10))

    # s1: 20 % of 60,000 = 12,000, tax 1,200, net 46,800.
    # s2: exact(120,000) − exact(60,000) = (20,000 + 2,000) − 12,000 = 10,000,
    # tax 1,000, net 49,000.
    assert [e.release for e in journal.take(escrow)] == [
        Release("s1", "w1", jpy(60_000), jpy(12_000), jpy(1_200), jpy(0), jpy(46_800)),
        Release("s2", "w1", jpy(60_000), jpy(10_000), jpy(1_000), jpy(0), jpy(49_000)),
    ]


def test_usd_approval_rounds_down_to_cents(plans: dict[str, FeePlan],
                                           journal: Journal) -> None:
    escrow = open_task(plans["usd_standard"], unit_price=usd("12.55"), quantity=3)
    # 12.55 × 3 = 37.65; client fee 5 % = 1.8825 → 1.88 (no tax); payment 39.53.
    escrow.fund_task(usd("39.53"), "pay-1", **at(1))
    escrow.receive_submission("s1", "w1", **at(2))
    escrow.approve_submission("s1", **at(3))

    _, funding, _, approval = journal.take(escrow)
    assert funding.funding == Funding("capacity", usd("37.65"), usd("1.88"), usd("0"), "pay-1")
    # Worker fee 10 % of 12.55 = 1.255 → 1.25; net 11.30.
    assert approval.release == Release("s1", "w1", usd("12.55"), usd("1.25"), usd("0"),
                                       usd("0"), usd("11.30"))


def test_reject_reopens_the_slot(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")], quantity=1)
    journal.rejects(escrow, "quantity_exceeded",
                    lambda: escrow.receive_submission("s2", "w2", **at(5)))

    escrow.reject_submission("s1", "blurry photo", **at(6))

    event = journal.one(escrow)
    assert isinstance(event, ev.SubmissionRejected)
    # The task is open: the freed slot stays funded for the next submission.
    assert (event.reason, event.refund, event.postings) == ("blurry photo", None, [])
    assert (escrow.items["s1"].state, escrow.slots_taken, escrow.held) == (
        "rejected", 0, jpy(1_000))
    escrow.receive_submission("s2", "w2", **at(7))
    journal.take(escrow)
    assert escrow.items["s2"].state == "pending"


def test_approved_submissions_never_exceed_quantity(plans: dict[str, FeePlan],
                                                    journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1"), ("s2", "w2")], quantity=2)
    escrow.approve_submission("s1", **at(5))
    escrow.approve_submission("s2", **at(6))

    journal.rejects(escrow, "quantity_exceeded",
                    lambda: escrow.receive_submission("s3", "w3", **at(7)))
    assert escrow.held == jpy(0)


@pytest.mark.parametrize(("decide", "command"), [
    ("approve", lambda e: e.approve_submission("s1", **at(9))),
    ("approve", lambda e: e.reject_submission("s1", "late", **at(9))),
    ("reject", lambda e: e.approve_submission("s1", **at(9))),
    ("reject", lambda e: e.reject_submission("s1", "late", **at(9))),
])
def test_only_pending_submissions_are_decided(plans: dict[str, FeePlan], journal: Journal,
                                              decide: str, command: Any) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")])
    if decide == "approve":
        escrow.approve_submission("s1", **at(5))
    else:
        escrow.reject_submission("s1", "no", **at(5))
    journal.rejects(escrow, "submission_not_pending", lambda: command(escrow))


@pytest.mark.parametrize(("command", "code"), [
    (lambda e: e.approve_submission("s9", **at(9)), "unknown_item"),
    (lambda e: e.reject_submission("s9", "no", **at(9)), "unknown_item"),
    (lambda e: e.fund_milestone("s1", jpy(1_000), "pay", **at(9)), "wrong_format"),
    (lambda e: e.accept_milestone("s1", **at(9)), "wrong_format"),
    (lambda e: e.submit_entry("e1", "w1", **at(9)), "wrong_format"),
    (lambda e: e.add_milestone("m1", jpy(1_000), jpy(0), **at(9)), "wrong_format"),
])
def test_invalid_task_commands_are_rejected(plans: dict[str, FeePlan], journal: Journal,
                                            command: Any, code: str) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")])
    journal.rejects(escrow, code, lambda: command(escrow))


# Closing -------------------------------------------------------------------------


def closing_scene(plans: dict[str, FeePlan], journal: Journal) -> Escrow:
    """Quantity 5 at 1,000: s1 approved, s2 pending, s3 rejected → 2 slots taken."""
    escrow = funded(plans["tiered"], journal, [("s1", "w1"), ("s2", "w2"), ("s3", "w3")],
                    quantity=5)
    escrow.approve_submission("s1", **at(10))
    escrow.reject_submission("s3", "off topic", **at(11))
    journal.take(escrow)
    return escrow


def test_close_refunds_unfilled_capacity_at_once(plans: dict[str, FeePlan],
                                                 journal: Journal) -> None:
    escrow = closing_scene(plans, journal)

    escrow.close_task(**at(12))

    event = journal.one(escrow)
    assert isinstance(event, ev.TaskClosed)
    # 5 slots − (s1 approved + s2 pending) = 3 free × 1,000 = 3,000 refunded;
    # s2's 1,000 stays reserved.
    assert event.refund == Refund("capacity", jpy(3_000))
    assert event.postings == [Posting(ESCROW, "debit", jpy(3_000)),
                              Posting(REFUNDABLE, "credit", jpy(3_000))]
    assert (escrow.state, escrow.held, escrow.refunded) == ("closed", jpy(1_000), jpy(3_000))
    assert escrow.items["s2"].state == "pending"


def test_a_pending_submission_rejected_after_close_is_refunded(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = closing_scene(plans, journal)
    escrow.close_task(**at(12))
    journal.take(escrow)

    escrow.reject_submission("s2", "wrong format", **at(13))

    event = journal.one(escrow)
    assert event.refund == Refund("s2", jpy(1_000))
    assert event.postings == [Posting(ESCROW, "debit", jpy(1_000)),
                              Posting(REFUNDABLE, "credit", jpy(1_000))]
    # 1,000 released to s1 + 4,000 refunded = the 5,000 funded.
    assert (escrow.held, escrow.refunded, escrow.released) == (jpy(0), jpy(4_000), jpy(1_000))


def test_a_pending_submission_approved_after_close_is_released(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = closing_scene(plans, journal)
    escrow.close_task(**at(12))
    journal.take(escrow)

    escrow.approve_submission("s2", **at(13))

    assert journal.one(escrow).release == Release(
        "s2", "w2", jpy(1_000), jpy(200), jpy(20), jpy(0), jpy(780))
    assert (escrow.held, escrow.refunded, escrow.released) == (jpy(0), jpy(3_000), jpy(2_000))


def test_closing_a_full_task_refunds_nothing(plans: dict[str, FeePlan],
                                             journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")], quantity=1)

    escrow.close_task(**at(9))

    event = journal.one(escrow)
    assert (event.refund, event.postings, escrow.state) == (None, [], "closed")


def test_closing_an_unfunded_task_refunds_nothing(plans: dict[str, FeePlan],
                                                  journal: Journal) -> None:
    escrow = open_task(plans["tiered"])
    journal.take(escrow)

    escrow.close_task(**at(1))

    assert (journal.one(escrow).refund, escrow.state) == (None, "closed")
    journal.rejects(escrow, "job_closed", lambda: escrow.fund_task(jpy(3_000), "p", **at(2)))


@pytest.mark.parametrize("command", [
    lambda e: e.receive_submission("s9", "w9", **at(20)),
    lambda e: e.close_task(**at(20)),
    lambda e: e.fund_task(jpy(5_000), "pay-2", **at(20)),
])
def test_a_closed_task_takes_no_more_submissions(plans: dict[str, FeePlan],
                                                 journal: Journal, command: Any) -> None:
    escrow = closing_scene(plans, journal)
    escrow.close_task(**at(12))
    journal.rejects(escrow, "job_closed", lambda: command(escrow))


# Auto-approval -------------------------------------------------------------------


def test_an_undecided_submission_is_auto_approved_after_approval_days(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("s1", "w1")], approval_days=3)
    received = T0 + timedelta(hours=2)

    assert escrow.run_timers(received + timedelta(days=3) - timedelta(seconds=1)) == []
    escrow.run_timers(received + timedelta(days=3))

    event = journal.one(escrow)
    assert isinstance(event, ev.SubmissionApproved)
    assert (event.automatic, event.causation_id) == (True, "timer:auto_approve:task-1:s1")
    assert event.release == Release("s1", "w1", jpy(1_000), jpy(200), jpy(20), jpy(0), jpy(780))
    assert escrow.items["s1"].state == "released"
