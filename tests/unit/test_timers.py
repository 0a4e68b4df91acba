"""Timers (SPEC §2, contract): auto-accept, auto-approve and award-deadline actions
are due from event times and the given `now`, applied once, with deterministic
causation ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from moneyed import Money

from settlement.core.fees import FeePlan
from settlement.core.money import money
from settlement.core.movements import Refund, Release
from settlement.escrow import Escrow
from settlement.escrow import events as ev
from settlement.escrow.timers import TimerAction

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def jpy(amount: int) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def at(when: datetime, n: int = 0) -> dict[str, Any]:
    return {"causation_id": f"mkt-{when.isoformat()}-{n}", "at": when}


def project(plans: dict[str, FeePlan], journal: Journal, inspection_days: int = 14,
            milestones: tuple[str, ...] = ("m1",), job_id: str = "job-1") -> Escrow:
    """Funded milestones of 11,000 each on the tiered plan, not yet delivered."""
    escrow = Escrow.contract_project(
        job_id=job_id, client_id="c1", worker_id="w1", plan=plans["tiered"],
        milestones=[(m, jpy(11_000), jpy(0)) for m in milestones], withholding=False,
        inspection_days=inspection_days, terms=None, causation_id="mkt-0", at=T0)
    for n, milestone in enumerate(milestones):
        escrow.fund_milestone(milestone, jpy(11_000), f"pay-{n}", **at(T0, n))
    journal.take(escrow)
    return escrow


def task(plans: dict[str, FeePlan], journal: Journal, approval_days: int = 14) -> Escrow:
    escrow = Escrow.open_task(
        job_id="task-1", client_id="c1", plan=plans["tiered"], unit_price=jpy(1_000),
        quantity=3, tax=jpy(0), approval_days=approval_days, withholding=False, terms=None,
        causation_id="mkt-0", at=T0)
    escrow.fund_task(jpy(3_000), "pay-1", **at(T0))
    journal.take(escrow)
    return escrow


# Auto-accept ---------------------------------------------------------------------


def test_auto_accept_is_due_exactly_inspection_days_after_delivery(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = project(plans, journal, inspection_days=7)
    delivered = T0 + timedelta(days=1, hours=3)
    escrow.deliver_milestone("m1", **at(delivered))
    journal.take(escrow)
    due = delivered + timedelta(days=7)

    assert escrow.due_timers(due - SECOND) == []
    assert escrow.run_timers(due - SECOND) == []
    assert escrow.collect_events() == []
    assert escrow.due_timers(due) == [TimerAction("auto_accept", "m1", due)]

    assert escrow.run_timers(due) == [TimerAction("auto_accept", "m1", due)]

    event = journal.one(escrow)
    assert isinstance(event, ev.MilestoneReleased)
    assert (event.automatic, event.causation_id, event.timestamp) == (
        True, "timer:auto_accept:job-1:m1", due)
    # 20 % of 11,000 = 2,200, tax 220, net 8,580.
    assert event.release == Release("m1", "w1", jpy(11_000), jpy(2_200), jpy(220), jpy(0),
                                    jpy(8_580))
    assert escrow.items["m1"].state == "released"


def test_a_late_timer_run_acts_with_its_own_now(plans: dict[str, FeePlan],
                                                journal: Journal) -> None:
    escrow = project(plans, journal)
    escrow.deliver_milestone("m1", **at(T0))
    journal.take(escrow)
    now = T0 + timedelta(days=20)

    [action] = escrow.run_timers(now)

    # The action says when it fell due; the event is stamped with the run's `now`.
    assert action.due_at == T0 + timedelta(days=14)
    assert journal.one(escrow).timestamp == now


def test_redelivery_after_a_revision_restarts_the_inspection_clock(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = project(plans, journal)
    escrow.deliver_milestone("m1", **at(T0))
    escrow.request_revision("m1", "typo on page 2", **at(T0 + timedelta(days=3)))
    journal.take(escrow)

    # Funded again: nothing is due at the first delivery's deadline.
    assert escrow.due_timers(T0 + timedelta(days=14)) == []

    redelivered = T0 + timedelta(days=5)
    escrow.deliver_milestone("m1", **at(redelivered))
    journal.take(escrow)

    assert escrow.due_timers(T0 + timedelta(days=14)) == []
    assert escrow.due_timers(redelivered + timedelta(days=14) - SECOND) == []
    assert escrow.due_timers(redelivered + timedelta(days=14)) == [
        TimerAction("auto_accept", "m1", redelivered + timedelta(days=14))]


def test_only_the_milestones_that_are_due_are_accepted(plans: dict[str, FeePlan],
                                                       journal: Journal) -> None:
    escrow = project(plans, journal, milestones=("m1", "m2", "m3"))
    escrow.deliver_milestone("m1", **at(T0))
    escrow.deliver_milestone("m2", **at(T0 + timedelta(days=2)))
    journal.take(escrow)  # m3 is funded but never delivered

    applied = escrow.run_timers(T0 + timedelta(days=15))

    assert applied == [TimerAction("auto_accept", "m1", T0 + timedelta(days=14))]
    assert [i.state for i in escrow.items.values()] == ["released", "delivered", "funded"]
    assert [e.causation_id for e in journal.take(escrow)] == ["timer:auto_accept:job-1:m1"]


def test_due_timers_is_pure(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = project(plans, journal)
    escrow.deliver_milestone("m1", **at(T0))
    journal.take(escrow)
    before = escrow.state_digest()

    escrow.due_timers(T0 + timedelta(days=30))

    assert escrow.collect_events() == []
    assert escrow.state_digest() == before


# Auto-approve --------------------------------------------------------------------


def test_auto_approve_is_due_approval_days_after_receipt(plans: dict[str, FeePlan],
                                                         journal: Journal) -> None:
    escrow = task(plans, journal, approval_days=3)
    received = T0 + timedelta(hours=5)
    escrow.receive_submission("s1", "w1", **at(received))
    escrow.receive_submission("s2", "w2", **at(received + timedelta(hours=1)))
    escrow.reject_submission("s2", "spam", **at(received + timedelta(hours=2)))
    journal.take(escrow)
    due = received + timedelta(days=3)

    assert escrow.due_timers(due - SECOND) == []
    # The rejected s2 is decided: only s1 is auto-approved.
    assert escrow.run_timers(due + timedelta(days=1)) == [TimerAction("auto_approve", "s1", due)]

    event = journal.one(escrow)
    assert isinstance(event, ev.SubmissionApproved)
    assert (event.automatic, event.causation_id) == (True, "timer:auto_approve:task-1:s1")
    # 20 % of 1,000 = 200, tax 20, net 780.
    assert event.release == Release("s1", "w1", jpy(1_000), jpy(200), jpy(20), jpy(0), jpy(780))


def test_pending_submissions_of_a_closed_task_are_still_auto_approved(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = task(plans, journal)
    escrow.receive_submission("s1", "w1", **at(T0))
    escrow.close_task(**at(T0 + timedelta(days=1)))
    journal.take(escrow)

    escrow.run_timers(T0 + timedelta(days=14))

    event = journal.one(escrow)
    assert (event.release.gross, event.automatic) == (jpy(1_000), True)
    assert escrow.held == jpy(0)


# Idempotence and determinism -----------------------------------------------------


def test_a_second_run_at_the_same_now_does_nothing(plans: dict[str, FeePlan],
                                                   journal: Journal) -> None:
    escrow = project(plans, journal, milestones=("m1", "m2"))
    escrow.deliver_milestone("m1", **at(T0))
    escrow.deliver_milestone("m2", **at(T0))
    journal.take(escrow)
    now = T0 + timedelta(days=14)

    assert len(escrow.run_timers(now)) == 2
    assert len(journal.take(escrow)) == 2
    before = escrow.state_digest()

    assert escrow.run_timers(now) == []
    assert escrow.collect_events() == []
    assert escrow.state_digest() == before


def test_a_second_competition_run_does_nothing(plans: dict[str, FeePlan],
                                               journal: Journal) -> None:
    deadline = T0 + timedelta(days=14)
    escrow = Escrow.open_competition(
        job_id="comp-1", client_id="c1", plan=plans["tiered"], prize=jpy(100_000), tax=jpy(0),
        guaranteed=False, entry_deadline=T0 + timedelta(days=7), award_deadline=deadline,
        min_entries=0, withholding=False, terms=None, causation_id="mkt-0", at=T0)
    escrow.fund_competition(jpy(100_000), "pay-1", **at(T0))
    journal.take(escrow)

    escrow.run_timers(deadline)
    assert journal.one(escrow).refund == Refund("prize", jpy(100_000))

    assert escrow.run_timers(deadline) == []
    assert escrow.collect_events() == []
    assert (escrow.state, escrow.refunded) == ("refunded", jpy(100_000))


def test_timer_causation_ids_are_deterministic(plans: dict[str, FeePlan],
                                               journal: Journal) -> None:
    """Two runs over the same history (say, a retried timer pass on another node)
    cause the same command: `timer:<action>:<job>:<item>`."""
    causes = []
    for _ in range(2):
        escrow = project(plans, journal, job_id="job-7")
        escrow.deliver_milestone("m1", **at(T0))
        escrow.run_timers(T0 + timedelta(days=30))
        causes.append(journal.take(escrow)[-1].causation_id)
        journal.history.clear()

    assert causes == ["timer:auto_accept:job-7:m1"] * 2
    assert TimerAction("auto_approve", "s1", T0).causation_id("task-1") == (
        "timer:auto_approve:task-1:s1")
