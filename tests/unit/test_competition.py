"""Competition escrows (SPEC §2): prize funded in full, entries, awards,
cancellation, and the award-deadline timers."""

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
from settlement.escrow.timers import TimerAction
from settlement.ledger.posting import Posting

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ENTRY_DEADLINE = T0 + timedelta(days=7)
AWARD_DEADLINE = T0 + timedelta(days=14)
CASH = "assets:safeguarded_cash"
ESCROW = "liabilities:escrow:comp-1"
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


def open_competition(plan: FeePlan, prize: Money | None = None, guaranteed: bool = True,
                     tax: Money | None = None, min_entries: int = 0,
                     withholding: bool = False) -> Escrow:
    return Escrow.open_competition(
        job_id="comp-1", client_id="c1", plan=plan, prize=prize or jpy(100_000),
        tax=tax or zero(plan.currency), guaranteed=guaranteed, entry_deadline=ENTRY_DEADLINE,
        award_deadline=AWARD_DEADLINE, min_entries=min_entries, withholding=withholding,
        terms={"brief": "a logo"}, causation_id="mkt-1", at=T0,
    )


def at(hours: int) -> dict[str, Any]:
    return {"causation_id": f"mkt-h{hours}", "at": T0 + timedelta(hours=hours)}


def funded(plan: FeePlan, journal: Journal, entries: list[tuple[str, str]] = (), **kwargs: Any
           ) -> Escrow:
    """A competition whose prize (tiered plan: no client fee) is funded, with `entries`."""
    escrow = open_competition(plan, **kwargs)
    escrow.fund_competition(escrow.prize, "pay-1", **at(1))
    for n, (entry_id, worker_id) in enumerate(entries):
        escrow.submit_entry(entry_id, worker_id, **at(2 + n))
    journal.take(escrow)
    return escrow


# Opening and funding -------------------------------------------------------------


def test_open_records_the_prize_and_deadlines(plans: dict[str, FeePlan],
                                              journal: Journal) -> None:
    escrow = open_competition(plans["tiered"], min_entries=3)

    opened = journal.one(escrow)

    assert isinstance(opened, ev.CompetitionOpened)
    assert (opened.prize, opened.guaranteed, opened.postings) == (jpy(100_000), True, [])
    assert (escrow.format, escrow.state, escrow.items) == ("competition", "opened", {})
    assert (escrow.entry_deadline, escrow.award_deadline) == (ENTRY_DEADLINE, AWARD_DEADLINE)
    assert (escrow.min_entries, escrow.terms) == (3, {"brief": "a logo"})


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"prize": usd("100")}, "currency_mismatch"),
    ({"tax": usd("1")}, "currency_mismatch"),
    ({"tax": jpy(100_001)}, "tax_exceeds_amount"),
    ({"award_deadline": ENTRY_DEADLINE - timedelta(seconds=1)}, "invalid_deadlines"),
    ({"withholding": True, "plan": "usd_standard", "prize": usd("100"), "tax": usd("0")},
     "withholding_currency"),
])
def test_invalid_openings_are_rejected(plans: dict[str, FeePlan], kwargs: dict[str, Any],
                                       code: str) -> None:
    fields: dict[str, Any] = {
        "job_id": "comp-1", "client_id": "c1", "plan": plans["tiered"], "prize": jpy(100_000),
        "tax": jpy(0), "guaranteed": True, "entry_deadline": ENTRY_DEADLINE,
        "award_deadline": AWARD_DEADLINE, "min_entries": 0, "withholding": False,
        "terms": None, "causation_id": "mkt-1", "at": T0,
    }
    fields.update(kwargs)
    fields["plan"] = plans[kwargs.get("plan", "tiered")]
    with pytest.raises(Rejected) as refused:
        Escrow.open_competition(**fields)
    assert refused.value.code == code


def test_fund_deposits_the_prize_plus_the_client_fee(plans: dict[str, FeePlan],
                                                     journal: Journal) -> None:
    escrow = open_competition(plans["flat"])
    journal.take(escrow)

    # Client fee 5.5 % tax-included on the 100,000 prize: 5,500 = fee 5,000 + tax 500.
    escrow.fund_competition(jpy(105_500), "pay-1", **at(1))

    event = journal.one(escrow)
    assert isinstance(event, ev.CompetitionFunded)
    assert event.funding == Funding("prize", jpy(100_000), jpy(5_000), jpy(500), "pay-1")
    assert event.postings == [
        Posting(CASH, "debit", jpy(105_500)),
        Posting(ESCROW, "credit", jpy(100_000)),
        Posting(CLIENT_FEES, "credit", jpy(5_000)),
        Posting(TAX, "credit", jpy(500)),
    ]
    assert (escrow.state, escrow.held, escrow.fees) == ("funded", jpy(100_000), jpy(5_500))


@pytest.mark.parametrize(("paid", "code"), [
    (jpy(100_000), "amount_mismatch"),  # the client fee is missing
    (jpy(105_501), "amount_mismatch"),
    (usd("105500"), "currency_mismatch"),
])
def test_funding_must_be_the_prize_plus_fee(plans: dict[str, FeePlan], journal: Journal,
                                            paid: Money, code: str) -> None:
    escrow = open_competition(plans["flat"])
    journal.rejects(escrow, code, lambda: escrow.fund_competition(paid, "pay-1", **at(1)))


def test_a_competition_is_funded_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)
    journal.rejects(escrow, "competition_already_funded",
                    lambda: escrow.fund_competition(jpy(100_000), "pay-2", **at(5)))


# Entries -------------------------------------------------------------------------


def test_entries_are_items_of_their_workers(plans: dict[str, FeePlan],
                                            journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)

    escrow.submit_entry("e1", "w1", **at(3))

    event = journal.one(escrow)
    assert isinstance(event, ev.EntrySubmitted)
    assert (event.entry_id, event.worker_id, event.postings) == ("e1", "w1", [])
    entry = escrow.items["e1"]
    assert (entry.kind, entry.state, entry.worker_id, entry.delivered_at) == (
        "entry", "entered", "w1", T0 + timedelta(hours=3))


def test_entries_before_funding_do_not_count(plans: dict[str, FeePlan],
                                             journal: Journal) -> None:
    escrow = open_competition(plans["tiered"])
    journal.rejects(escrow, "competition_not_funded",
                    lambda: escrow.submit_entry("e1", "w1", **at(1)))


def test_entries_close_at_the_entry_deadline(plans: dict[str, FeePlan],
                                             journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)

    escrow.submit_entry("e1", "w1", causation_id="mkt-9", at=ENTRY_DEADLINE)
    journal.take(escrow)
    assert "e1" in escrow.items

    late = ENTRY_DEADLINE + timedelta(seconds=1)
    journal.rejects(escrow, "entry_deadline_passed",
                    lambda: escrow.submit_entry("e2", "w2", causation_id="mkt-10", at=late))


def test_an_entry_id_is_used_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1")])
    journal.rejects(escrow, "duplicate_item", lambda: escrow.submit_entry("e1", "w2", **at(9)))


# Awards --------------------------------------------------------------------------


def test_award_to_one_entry_releases_the_prize(plans: dict[str, FeePlan],
                                               journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")])

    escrow.award([("e2", jpy(100_000))], **at(200))

    event = journal.one(escrow)
    assert isinstance(event, ev.CompetitionAwarded)
    # 20 % of 100,000 = 20,000; tax 2,000; net 78,000.
    assert event.releases == [
        Release("e2", "w2", jpy(100_000), jpy(20_000), jpy(2_000), jpy(0), jpy(78_000))]
    assert event.automatic is False
    assert event.postings == [
        Posting(ESCROW, "debit", jpy(100_000)),
        Posting(payable("w2"), "credit", jpy(78_000)),
        Posting(WORKER_FEES, "credit", jpy(20_000)),
        Posting(TAX, "credit", jpy(2_000)),
    ]
    assert escrow.state == "awarded"
    assert (escrow.items["e2"].state, escrow.items["e2"].amount) == ("released", jpy(100_000))
    assert escrow.items["e1"].state == "entered"
    assert (escrow.held, escrow.released) == (jpy(0), jpy(100_000))


def test_award_to_several_entries(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")])

    escrow.award([("e1", jpy(60_000)), ("e2", jpy(40_000))], **at(200))

    # w1: 20 % of 60,000 = 12,000, tax 1,200, net 46,800.
    # w2: 20 % of 40,000 = 8,000, tax 800, net 31,200.
    assert journal.one(escrow).releases == [
        Release("e1", "w1", jpy(60_000), jpy(12_000), jpy(1_200), jpy(0), jpy(46_800)),
        Release("e2", "w2", jpy(40_000), jpy(8_000), jpy(800), jpy(0), jpy(31_200)),
    ]
    assert escrow.released_to == {"w1": jpy(60_000), "w2": jpy(40_000)}
    assert escrow.held == jpy(0)


def test_awards_to_the_same_worker_run_the_fee_tiers_cumulatively(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w1")],
                    prize=jpy(150_000))

    escrow.award([("e1", jpy(100_000)), ("e2", jpy(50_000))], **at(200))

    # e1: 100,000 in the 20 % tier: fee 20,000, tax 2,000, net 78,000.
    # e2: the worker's 100,001st–150,000th yen are in the 10 % tier: fee 5,000,
    # tax 500, net 44,500 (not 10,000 as a fresh 20 % tier would give).
    assert journal.one(escrow).releases == [
        Release("e1", "w1", jpy(100_000), jpy(20_000), jpy(2_000), jpy(0), jpy(78_000)),
        Release("e2", "w1", jpy(50_000), jpy(5_000), jpy(500), jpy(0), jpy(44_500)),
    ]
    assert escrow.released_to == {"w1": jpy(150_000)}


def test_award_withholding_takes_its_share_of_the_prize_tax(plans: dict[str, FeePlan],
                                                            journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")],
                    prize=jpy(110_000), tax=jpy(10_000), withholding=True)

    escrow.award([("e1", jpy(55_000)), ("e2", jpy(55_000))], **at(200))

    # Each half: tax share floor(10,000 × 55,000 / 110,000) = 5,000, base 50,000,
    # W = floor(50,000 × 0.1021) = 5,105; fee 20 % = 11,000, tax 1,100;
    # net 55,000 − 11,000 − 1,100 − 5,105 = 37,795.
    assert journal.one(escrow).releases == [
        Release("e1", "w1", jpy(55_000), jpy(11_000), jpy(1_100), jpy(5_105), jpy(37_795)),
        Release("e2", "w2", jpy(55_000), jpy(11_000), jpy(1_100), jpy(5_105), jpy(37_795)),
    ]
    assert escrow.withheld == jpy(10_210)


@pytest.mark.parametrize(("awards", "code"), [
    ([("e1", jpy(99_999))], "award_sum_mismatch"),
    ([("e1", jpy(60_000)), ("e2", jpy(40_001))], "award_sum_mismatch"),
    ([("e9", jpy(100_000))], "unknown_item"),
    ([("e1", jpy(50_000)), ("e1", jpy(50_000))], "duplicate_item"),
    ([], "too_many_items"),
    ([("e1", usd("100000"))], "currency_mismatch"),
])
def test_invalid_awards_are_rejected(plans: dict[str, FeePlan], journal: Journal,
                                     awards: list[tuple[str, Money]], code: str) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")])
    journal.rejects(escrow, code, lambda: escrow.award(awards, **at(200)))


def test_an_award_needs_a_funded_competition(plans: dict[str, FeePlan],
                                            journal: Journal) -> None:
    escrow = open_competition(plans["tiered"])
    journal.rejects(escrow, "competition_not_funded",
                    lambda: escrow.award([("e1", jpy(100_000))], **at(200)))


def test_a_competition_is_awarded_once(plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1")], guaranteed=False)
    escrow.award([("e1", jpy(100_000))], **at(200))

    journal.rejects(escrow, "already_awarded",
                    lambda: escrow.award([("e1", jpy(100_000))], **at(201)))
    journal.rejects(escrow, "already_awarded", lambda: escrow.cancel_competition("x", **at(201)))
    journal.rejects(escrow, "already_awarded",
                    lambda: escrow.submit_entry("e2", "w2", **at(3)))
    journal.rejects(escrow, "already_awarded",
                    lambda: escrow.fund_competition(jpy(100_000), "pay-2", **at(201)))


# Cancellation --------------------------------------------------------------------


def test_a_guaranteed_competition_cannot_be_cancelled(plans: dict[str, FeePlan],
                                                      journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, guaranteed=True)
    journal.rejects(escrow, "competition_guaranteed",
                    lambda: escrow.cancel_competition("changed mind", **at(5)))


def test_cancelling_a_non_guaranteed_competition_refunds_the_full_prize(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = open_competition(plans["flat"], guaranteed=False)
    escrow.fund_competition(jpy(105_500), "pay-1", **at(1))
    escrow.submit_entry("e1", "w1", **at(2))
    journal.take(escrow)

    escrow.cancel_competition("brief withdrawn", **at(3))

    event = journal.one(escrow)
    assert isinstance(event, ev.CompetitionCancelled)
    # The full prize comes back; the client fee was revenue at funding and stays.
    assert (event.reason, event.refund) == ("brief withdrawn", Refund("prize", jpy(100_000)))
    assert event.postings == [Posting(ESCROW, "debit", jpy(100_000)),
                              Posting(REFUNDABLE, "credit", jpy(100_000))]
    assert (escrow.state, escrow.held, escrow.refunded, escrow.fees) == (
        "cancelled", jpy(0), jpy(100_000), jpy(5_500))


def test_cancelling_an_unfunded_competition_refunds_nothing(plans: dict[str, FeePlan],
                                                            journal: Journal) -> None:
    escrow = open_competition(plans["tiered"], guaranteed=False)
    journal.take(escrow)

    escrow.cancel_competition("no budget", **at(1))

    event = journal.one(escrow)
    assert (event.refund, event.postings, escrow.state) == (None, [], "cancelled")


@pytest.mark.parametrize("command", [
    lambda e: e.fund_competition(jpy(100_000), "pay-2", **at(9)),
    lambda e: e.submit_entry("e2", "w2", **at(9)),
    lambda e: e.award([("e1", jpy(100_000))], **at(9)),
    lambda e: e.cancel_competition("again", **at(9)),
])
def test_a_cancelled_competition_is_closed(plans: dict[str, FeePlan], journal: Journal,
                                           command: Any) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1")], guaranteed=False)
    escrow.cancel_competition("no", **at(8))
    journal.rejects(escrow, "job_closed", lambda: command(escrow))


# Award-deadline timers -----------------------------------------------------------


def test_nothing_is_due_before_the_award_deadline(plans: dict[str, FeePlan],
                                                  journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1")])

    assert escrow.due_timers(AWARD_DEADLINE - timedelta(seconds=1)) == []
    assert escrow.run_timers(AWARD_DEADLINE - timedelta(seconds=1)) == []
    assert escrow.collect_events() == []


def test_guaranteed_default_award_splits_among_distinct_workers(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    # Four entries by three workers: w1 entered twice, first with e1.
    escrow = funded(plans["tiered"], journal,
                    [("e1", "w1"), ("e2", "w2"), ("e3", "w1"), ("e4", "w3")])

    assert escrow.due_timers(AWARD_DEADLINE) == [
        TimerAction("default_award", "prize", AWARD_DEADLINE)]
    # 100,000 / 3 = 33,333 rest 1: the odd yen goes to the earliest entry (e1).
    assert escrow.guaranteed_split() == [
        ("e1", jpy(33_334)), ("e2", jpy(33_333)), ("e4", jpy(33_333))]

    escrow.run_timers(AWARD_DEADLINE)

    event = journal.one(escrow)
    assert isinstance(event, ev.CompetitionAwarded)
    assert (event.automatic, event.causation_id) == (True, "timer:default_award:comp-1:prize")
    # 33,334: fee floor(6,666.8) = 6,666, tax 666, net 26,002.
    # 33,333: fee floor(6,666.6) = 6,666, tax 666, net 26,001.
    assert event.releases == [
        Release("e1", "w1", jpy(33_334), jpy(6_666), jpy(666), jpy(0), jpy(26_002)),
        Release("e2", "w2", jpy(33_333), jpy(6_666), jpy(666), jpy(0), jpy(26_001)),
        Release("e4", "w3", jpy(33_333), jpy(6_666), jpy(666), jpy(0), jpy(26_001)),
    ]
    assert (escrow.state, escrow.held) == ("awarded", jpy(0))
    assert escrow.items["e3"].state == "entered"


@pytest.mark.parametrize(("prize", "workers", "expected"), [
    # 100,002 / 4 = 25,000 rest 2: one extra yen each to the two earliest.
    (jpy(100_002), 4, [jpy(25_001), jpy(25_001), jpy(25_000), jpy(25_000)]),
    # 100,000 / 4 divides evenly.
    (jpy(100_000), 4, [jpy(25_000)] * 4),
    # One worker takes it all.
    (jpy(100_000), 1, [jpy(100_000)]),
    # USD minor unit is the cent: 10,000 cents / 3 = 3,333 rest 1.
    (usd("100.00"), 3, [usd("33.34"), usd("33.33"), usd("33.33")]),
])
def test_guaranteed_split_gives_odd_minor_units_to_the_earliest_entries(
        plans: dict[str, FeePlan], journal: Journal, prize: Money, workers: int,
        expected: list[Money]) -> None:
    plan = plans["usd_standard" if prize.currency.code == "USD" else "tiered"]
    escrow = open_competition(plan, prize=prize)
    # USD funding includes the 5 % client fee: 100.00 + 5.00.
    escrow.fund_competition(prize if plan.name == "tiered" else usd("105.00"), "p", **at(1))
    for n in range(workers):
        escrow.submit_entry(f"e{n}", f"w{n}", **at(2 + n))
    journal.take(escrow)

    assert escrow.guaranteed_split() == [(f"e{n}", amount) for n, amount in enumerate(expected)]


def test_guaranteed_competition_without_entries_is_refunded(plans: dict[str, FeePlan],
                                                            journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, guaranteed=True)

    assert escrow.run_timers(AWARD_DEADLINE + timedelta(days=1)) == [
        TimerAction("refund_no_award", "prize", AWARD_DEADLINE)]

    event = journal.one(escrow)
    assert isinstance(event, ev.CompetitionRefunded)
    assert (event.reason, event.refund) == ("refund_no_award", Refund("prize", jpy(100_000)))
    assert event.causation_id == "timer:refund_no_award:comp-1:prize"
    assert event.postings == [Posting(ESCROW, "debit", jpy(100_000)),
                              Posting(REFUNDABLE, "credit", jpy(100_000))]
    assert (escrow.state, escrow.held, escrow.refunded) == ("refunded", jpy(0), jpy(100_000))


def test_non_guaranteed_competition_without_award_is_refunded_in_full(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")], guaranteed=False)

    escrow.run_timers(AWARD_DEADLINE)

    event = journal.one(escrow)
    assert (event.reason, event.refund) == ("refund_no_award", Refund("prize", jpy(100_000)))
    assert escrow.state == "refunded"
    assert [i.state for i in escrow.items.values()] == ["entered", "entered"]


@pytest.mark.parametrize("guaranteed", [True, False])
def test_fewer_entries_than_min_entries_are_refunded(plans: dict[str, FeePlan],
                                                     journal: Journal, guaranteed: bool) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")],
                    guaranteed=guaranteed, min_entries=3)

    escrow.run_timers(AWARD_DEADLINE)

    event = journal.one(escrow)
    assert (event.reason, event.refund) == ("refund_min_entries", Refund("prize", jpy(100_000)))
    assert event.causation_id == "timer:refund_min_entries:comp-1:prize"
    assert escrow.state == "refunded"


def test_exactly_min_entries_is_enough_for_the_default_award(plans: dict[str, FeePlan],
                                                             journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")], min_entries=2)

    assert [a.action for a in escrow.due_timers(AWARD_DEADLINE)] == ["default_award"]


def test_an_awarded_or_unfunded_competition_has_no_timer(plans: dict[str, FeePlan],
                                                         journal: Journal) -> None:
    awarded = funded(plans["tiered"], journal, [("e1", "w1")])
    awarded.award([("e1", jpy(100_000))], **at(20))
    journal.take(awarded)
    unfunded = open_competition(plans["tiered"])

    assert awarded.due_timers(AWARD_DEADLINE) == []
    assert unfunded.due_timers(AWARD_DEADLINE) == []


def test_a_disputed_competition_is_frozen_at_the_deadline(plans: dict[str, FeePlan],
                                                          journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal, [("e1", "w1"), ("e2", "w2")])
    escrow.open_dispute("e1", "worker", "plagiarised by e2", **at(30))
    journal.take(escrow)

    assert escrow.due_timers(AWARD_DEADLINE + timedelta(days=30)) == []
    assert escrow.run_timers(AWARD_DEADLINE + timedelta(days=30)) == []
    assert escrow.collect_events() == []
    assert (escrow.state, escrow.held) == ("funded", jpy(100_000))
