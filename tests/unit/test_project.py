"""Project escrows (SPEC §2): milestones contracted → funded → delivered → released,
revisions, cancellations, and every rejection with its code."""

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
ESCROW = "liabilities:escrow:job-1"
PAYABLE = "liabilities:worker_payable:w1"
REFUNDABLE = "liabilities:client_refundable:c1"
WITHHOLDING = "liabilities:withholding_tax:c1"
TAX = "liabilities:consumption_tax"
WORKER_FEES = "revenue:platform_fees:worker"
CLIENT_FEES = "revenue:platform_fees:client"


def jpy(amount: str | int) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def usd(amount: str) -> Money:
    return money(Decimal(amount), "USD", allow_zero=True)


def contract(plan: FeePlan, milestones: list[tuple[str, Money, Money]] | None = None,
             withholding: bool = False, job_id: str = "job-1") -> Escrow:
    if milestones is None:
        milestones = [("m1", jpy(11_000), zero(plan.currency))]
    return Escrow.contract_project(
        job_id=job_id, client_id="c1", worker_id="w1", plan=plan,
        milestones=milestones, withholding=withholding,
        inspection_days=14, terms={"scope": "logo"}, causation_id="mkt-1", at=T0,
    )


def step(n: int) -> dict[str, Any]:
    """Causation and time of the n-th marketplace event after the contract."""
    return {"causation_id": f"mkt-{n + 1}", "at": T0 + timedelta(hours=n)}


def funded(plan: FeePlan, journal: Journal, amount: int = 11_000, paid: int | None = None,
           withholding: bool = False, tax: int = 0) -> Escrow:
    escrow = contract(plan, [("m1", jpy(amount), jpy(tax))], withholding)
    escrow.fund_milestone("m1", jpy(paid or amount), "pay-1", **step(1))
    journal.take(escrow)
    return escrow


def delivered(plan: FeePlan, journal: Journal, **kwargs: Any) -> Escrow:
    escrow = funded(plan, journal, **kwargs)
    escrow.deliver_milestone("m1", **step(2))
    journal.take(escrow)
    return escrow


# Transitions ---------------------------------------------------------------------


def test_contract_opens_an_active_project_with_contracted_milestones(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = contract(plans["tiered"], [("m1", jpy(11_000), jpy(1_000)),
                                        ("m2", jpy(50_000), jpy(0))])

    opened = journal.one(escrow)

    assert isinstance(opened, ev.ProjectContracted)
    assert (opened.causation_id, opened.postings, opened.terms) == ("mkt-1", [], {"scope": "logo"})
    assert opened.plan["name"] == "tiered"
    assert (escrow.format, escrow.state, escrow.worker_id) == ("project", "active", "w1")
    assert [(i.item_id, i.kind, i.amount, i.tax, i.state, i.worker_id)
            for i in escrow.items.values()] == [
        ("m1", "milestone", jpy(11_000), jpy(1_000), "contracted", "w1"),
        ("m2", "milestone", jpy(50_000), jpy(0), "contracted", "w1"),
    ]
    assert escrow.funded == escrow.held == jpy(0)


def test_add_milestone_is_a_contract_amendment(plans: dict[str, FeePlan],
                                               journal: Journal) -> None:
    escrow = contract(plans["tiered"])
    journal.take(escrow)

    escrow.add_milestone("m2", jpy(30_000), jpy(2_727), **step(1))

    added = journal.one(escrow)
    assert isinstance(added, ev.MilestoneAdded)
    assert (added.milestone_id, added.amount, added.tax, added.postings) == (
        "m2", jpy(30_000), jpy(2_727), [])
    item = escrow.items["m2"]
    assert (item.state, item.amount, item.worker_id) == ("contracted", jpy(30_000), "w1")


def test_fund_moves_the_milestone_into_escrow(plans: dict[str, FeePlan],
                                              journal: Journal) -> None:
    escrow = contract(plans["tiered"])
    journal.take(escrow)

    escrow.fund_milestone("m1", jpy(11_000), "pay-9", **step(1))

    event = journal.one(escrow)
    assert isinstance(event, ev.MilestoneFunded)
    # The tiered plan has no client fee: the payment is the milestone amount.
    assert event.funding == Funding("m1", jpy(11_000), jpy(0), jpy(0), "pay-9")
    assert event.postings == [Posting(CASH, "debit", jpy(11_000)),
                              Posting(ESCROW, "credit", jpy(11_000))]
    assert escrow.items["m1"].state == "funded"
    assert (escrow.funded, escrow.held, escrow.fees) == (jpy(11_000), jpy(11_000), jpy(0))


def test_fund_with_the_flat_plan_includes_the_client_fee(plans: dict[str, FeePlan],
                                                         journal: Journal) -> None:
    escrow = contract(plans["flat"], [("m1", jpy(100_000), jpy(0))])
    journal.take(escrow)

    # Client fee 5.5 % tax-included on 100,000: total floor(5,500) = 5,500,
    # tax floor(5,500 × 0.10 / 1.10) = 500, fee 5,000; payment 105,500.
    escrow.fund_milestone("m1", jpy(105_500), "pay-1", **step(1))

    event = journal.one(escrow)
    assert event.funding == Funding("m1", jpy(100_000), jpy(5_000), jpy(500), "pay-1")
    assert event.postings == [
        Posting(CASH, "debit", jpy(105_500)),
        Posting(ESCROW, "credit", jpy(100_000)),
        Posting(CLIENT_FEES, "credit", jpy(5_000)),
        Posting(TAX, "credit", jpy(500)),
    ]
    assert (escrow.funded, escrow.held, escrow.fees) == (jpy(100_000), jpy(100_000), jpy(5_500))


@pytest.mark.parametrize("paid", [100_000, 105_499, 105_501])
def test_flat_funding_must_be_exactly_amount_plus_client_fee(
        plans: dict[str, FeePlan], journal: Journal, paid: int) -> None:
    escrow = contract(plans["flat"], [("m1", jpy(100_000), jpy(0))])
    journal.rejects(escrow, "amount_mismatch",
                    lambda: escrow.fund_milestone("m1", jpy(paid), "pay-1", **step(1)))


def test_deliver_records_when_the_worker_delivered(plans: dict[str, FeePlan],
                                                   journal: Journal) -> None:
    escrow = funded(plans["tiered"], journal)

    escrow.deliver_milestone("m1", causation_id="mkt-5", at=T0 + timedelta(days=3))

    event = journal.one(escrow)
    assert isinstance(event, ev.MilestoneDelivered)
    assert (event.milestone_id, event.causation_id, event.postings) == ("m1", "mkt-5", [])
    item = escrow.items["m1"]
    assert (item.state, item.delivered_at) == ("delivered", T0 + timedelta(days=3))


def test_request_revision_returns_the_milestone_to_funded(plans: dict[str, FeePlan],
                                                          journal: Journal) -> None:
    escrow = delivered(plans["tiered"], journal)

    escrow.request_revision("m1", "colours are off", **step(3))

    event = journal.one(escrow)
    assert isinstance(event, ev.RevisionRequested)
    assert (event.reason, event.postings) == ("colours are off", [])
    assert escrow.items["m1"].state == "funded"
    assert escrow.held == jpy(11_000)
    # Funded again, it can be delivered again.
    escrow.deliver_milestone("m1", **step(4))
    journal.take(escrow)
    assert escrow.items["m1"].state == "delivered"


def test_accept_releases_the_milestone_less_fee_and_tax(plans: dict[str, FeePlan],
                                                        journal: Journal) -> None:
    escrow = delivered(plans["tiered"], journal)

    escrow.accept_milestone("m1", **step(3))

    event = journal.one(escrow)
    assert isinstance(event, ev.MilestoneReleased)
    # SPEC §5 worked example: 20 % of 11,000 = 2,200; tax 10 % = 220; net 8,580.
    assert event.release == Release("m1", "w1", jpy(11_000), jpy(2_200), jpy(220), jpy(0),
                                    jpy(8_580))
    assert event.automatic is False
    assert event.postings == [
        Posting(ESCROW, "debit", jpy(11_000)),
        Posting(PAYABLE, "credit", jpy(8_580)),
        Posting(WORKER_FEES, "credit", jpy(2_200)),
        Posting(TAX, "credit", jpy(220)),
    ]
    assert escrow.items["m1"].state == "released"
    assert (escrow.released, escrow.held, escrow.fees) == (jpy(11_000), jpy(0), jpy(2_420))
    assert escrow.released_to == {"w1": jpy(11_000)}


def test_accept_with_withholding_uses_the_amount_net_of_included_tax(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = delivered(plans["tiered"], journal, amount=110_000, tax=10_000, withholding=True)

    escrow.accept_milestone("m1", **step(3))

    event = journal.one(escrow)
    # fee = 20 % × 100,000 + 10 % × 10,000 = 21,000; fee tax 2,100;
    # base = 110,000 − tax share 10,000 = 100,000 → W = floor(100,000 × 0.1021) = 10,210;
    # net = 110,000 − 21,000 − 2,100 − 10,210 = 76,690.
    assert event.release == Release("m1", "w1", jpy(110_000), jpy(21_000), jpy(2_100),
                                    jpy(10_210), jpy(76_690))
    assert event.postings == [
        Posting(ESCROW, "debit", jpy(110_000)),
        Posting(PAYABLE, "credit", jpy(76_690)),
        Posting(WORKER_FEES, "credit", jpy(21_000)),
        Posting(TAX, "credit", jpy(2_100)),
        Posting(WITHHOLDING, "credit", jpy(10_210)),
    ]
    assert escrow.withheld == jpy(10_210)


def test_accept_with_the_flat_plan_splits_the_tax_included_fee(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = delivered(plans["flat"], journal, amount=100_000, paid=105_500)

    escrow.accept_milestone("m1", **step(3))

    # 16.5 % of 100,000 = 16,500 tax-included: tax floor(16,500 × 0.1 / 1.1) = 1,500,
    # fee 15,000; net 100,000 − 16,500 = 83,500.
    assert journal.one(escrow).release == Release(
        "m1", "w1", jpy(100_000), jpy(15_000), jpy(1_500), jpy(0), jpy(83_500))
    # 5,500 client fee at funding + 16,500 worker fee.
    assert escrow.fees == jpy(22_000)


def test_worker_fee_tiers_run_on_the_cumulative_gross(plans: dict[str, FeePlan],
                                                      journal: Journal) -> None:
    escrow = contract(plans["tiered"], [("m1", jpy(100_000), jpy(0)),
                                        ("m2", jpy(100_000), jpy(0))])
    for n, milestone in enumerate(["m1", "m2"]):
        escrow.fund_milestone(milestone, jpy(100_000), f"pay-{n}", **step(3 * n + 1))
        escrow.deliver_milestone(milestone, **step(3 * n + 2))
        escrow.accept_milestone(milestone, **step(3 * n + 3))
    releases = [e.release for e in journal.take(escrow) if isinstance(e, ev.MilestoneReleased)]

    # First 100,000 entirely in the 20 % tier: fee 20,000, tax 2,000, net 78,000.
    # Second 100,000 falls in the 10 % tier (100,000–200,000): fee 10,000, tax 1,000, net 89,000.
    assert releases == [
        Release("m1", "w1", jpy(100_000), jpy(20_000), jpy(2_000), jpy(0), jpy(78_000)),
        Release("m2", "w1", jpy(100_000), jpy(10_000), jpy(1_000), jpy(0), jpy(89_000)),
    ]
    assert escrow.released_to == {"w1": jpy(200_000)}


def test_usd_project_rounds_down_to_cents(plans: dict[str, FeePlan],
                                          journal: Journal) -> None:
    plan = plans["usd_standard"]
    escrow = contract(plan, [("m1", usd("1234.56"), usd("0"))])
    # Client fee 5 % of 1,234.56 = 61.728 → 61.72 (no tax); payment 1,296.28.
    escrow.fund_milestone("m1", usd("1296.28"), "pay-1", **step(1))
    escrow.deliver_milestone("m1", **step(2))
    escrow.accept_milestone("m1", **step(3))

    _, funding, _, release = journal.take(escrow)
    assert funding.funding == Funding("m1", usd("1234.56"), usd("61.72"), usd("0"), "pay-1")
    # Worker fee 10 % of 1,234.56 = 123.456 → 123.45; net 1,111.11.
    assert release.release == Release("m1", "w1", usd("1234.56"), usd("123.45"), usd("0"),
                                      usd("0"), usd("1111.11"))


def test_cancel_a_contracted_milestone_refunds_nothing(plans: dict[str, FeePlan],
                                                       journal: Journal) -> None:
    escrow = contract(plans["tiered"])
    journal.take(escrow)

    escrow.cancel_milestone("m1", "scope dropped", **step(1))

    event = journal.one(escrow)
    assert isinstance(event, ev.MilestoneCancelled)
    assert (event.reason, event.refund, event.postings) == ("scope dropped", None, [])
    assert escrow.items["m1"].state == "cancelled"
    assert escrow.refunded == jpy(0)


def test_cancel_a_funded_milestone_refunds_it_but_keeps_the_client_fee(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    escrow = funded(plans["flat"], journal, amount=100_000, paid=105_500)

    escrow.cancel_milestone("m1", "client withdrew", **step(2))

    event = journal.one(escrow)
    assert event.refund == Refund("m1", jpy(100_000))
    assert event.postings == [Posting(ESCROW, "debit", jpy(100_000)),
                              Posting(REFUNDABLE, "credit", jpy(100_000))]
    assert escrow.items["m1"].state == "cancelled"
    assert (escrow.refunded, escrow.held, escrow.fees) == (jpy(100_000), jpy(0), jpy(5_500))


# Rejections ----------------------------------------------------------------------


def _released(escrow: Escrow) -> None:
    escrow.fund_milestone("m1", jpy(11_000), "pay-1", **step(1))
    escrow.deliver_milestone("m1", **step(2))
    escrow.accept_milestone("m1", **step(3))


def _cancelled(escrow: Escrow) -> None:
    escrow.cancel_milestone("m1", "no", **step(1))


def _funded(escrow: Escrow) -> None:
    escrow.fund_milestone("m1", jpy(11_000), "pay-1", **step(1))


def _delivered(escrow: Escrow) -> None:
    _funded(escrow)
    escrow.deliver_milestone("m1", **step(2))


def _contracted(escrow: Escrow) -> None:
    pass


AT = step(9)
COMMANDS = {
    "fund": lambda e: e.fund_milestone("m1", jpy(11_000), "pay-2", **AT),
    "deliver": lambda e: e.deliver_milestone("m1", **AT),
    "revise": lambda e: e.request_revision("m1", "again", **AT),
    "accept": lambda e: e.accept_milestone("m1", **AT),
    "cancel": lambda e: e.cancel_milestone("m1", "stop", **AT),
}


@pytest.mark.parametrize(("setup", "command", "code"), [
    (_funded, "fund", "milestone_already_funded"),
    (_delivered, "fund", "milestone_already_funded"),
    (_released, "fund", "milestone_already_funded"),
    (_contracted, "deliver", "milestone_not_funded"),
    (_delivered, "deliver", "milestone_not_funded"),
    (_released, "deliver", "milestone_not_funded"),
    (_cancelled, "deliver", "milestone_not_funded"),
    (_contracted, "revise", "milestone_not_delivered"),
    (_funded, "revise", "milestone_not_delivered"),
    (_released, "revise", "milestone_not_delivered"),
    (_contracted, "accept", "milestone_not_delivered"),
    (_funded, "accept", "milestone_not_delivered"),
    (_released, "accept", "milestone_not_delivered"),
    (_cancelled, "accept", "milestone_not_delivered"),
    (_delivered, "cancel", "milestone_not_cancellable"),
    (_released, "cancel", "milestone_not_cancellable"),
    (_cancelled, "cancel", "milestone_not_cancellable"),
])
def test_commands_in_the_wrong_milestone_state_are_rejected(
        plans: dict[str, FeePlan], journal: Journal, setup: Any, command: str,
        code: str) -> None:
    escrow = contract(plans["tiered"])
    setup(escrow)
    journal.rejects(escrow, code, lambda: COMMANDS[command](escrow))


@pytest.mark.parametrize(("command", "code"), [
    (lambda e: e.fund_milestone("m9", jpy(11_000), "pay-1", **AT), "unknown_item"),
    (lambda e: e.deliver_milestone("m9", **AT), "unknown_item"),
    (lambda e: e.request_revision("m9", "why", **AT), "unknown_item"),
    (lambda e: e.accept_milestone("m9", **AT), "unknown_item"),
    (lambda e: e.cancel_milestone("m9", "why", **AT), "unknown_item"),
    (lambda e: e.add_milestone("m1", jpy(5_000), jpy(0), **AT), "duplicate_item"),
    (lambda e: e.add_milestone("m2", usd("50"), usd("0"), **AT), "currency_mismatch"),
    (lambda e: e.add_milestone("m2", jpy(5_000), usd("0"), **AT), "currency_mismatch"),
    (lambda e: e.add_milestone("m2", jpy(5_000), jpy(5_001), **AT), "tax_exceeds_amount"),
    (lambda e: e.fund_milestone("m1", usd("11000"), "pay-1", **AT), "currency_mismatch"),
    (lambda e: e.fund_milestone("m1", jpy(10_999), "pay-1", **AT), "amount_mismatch"),
    (lambda e: e.fund_milestone("m1", jpy(11_001), "pay-1", **AT), "amount_mismatch"),
    # Competition and task commands on a project.
    (lambda e: e.fund_competition(jpy(11_000), "pay-1", **AT), "wrong_format"),
    (lambda e: e.submit_entry("e1", "w1", **AT), "wrong_format"),
    (lambda e: e.award([("m1", jpy(11_000))], **AT), "wrong_format"),
    (lambda e: e.cancel_competition("no", **AT), "wrong_format"),
    (lambda e: e.fund_task(jpy(11_000), "pay-1", **AT), "wrong_format"),
    (lambda e: e.receive_submission("s1", "w1", **AT), "wrong_format"),
    (lambda e: e.approve_submission("m1", **AT), "wrong_format"),
    (lambda e: e.reject_submission("m1", "no", **AT), "wrong_format"),
    (lambda e: e.close_task(**AT), "wrong_format"),
])
def test_invalid_project_commands_are_rejected(plans: dict[str, FeePlan], journal: Journal,
                                               command: Any, code: str) -> None:
    escrow = contract(plans["tiered"])
    journal.rejects(escrow, code, lambda: command(escrow))


def test_a_tax_equal_to_the_amount_is_allowed(plans: dict[str, FeePlan],
                                              journal: Journal) -> None:
    escrow = contract(plans["tiered"])
    escrow.add_milestone("m2", jpy(5_000), jpy(5_000), **AT)
    assert isinstance(journal.take(escrow)[-1], ev.MilestoneAdded)


def test_a_project_has_at_most_100_milestones(plans: dict[str, FeePlan],
                                              journal: Journal) -> None:
    escrow = contract(plans["tiered"], [(f"m{n}", jpy(1_000), jpy(0)) for n in range(99)])
    escrow.add_milestone("m99", jpy(1_000), jpy(0), **AT)
    journal.take(escrow)
    assert len(escrow.items) == 100

    journal.rejects(escrow, "too_many_items",
                    lambda: escrow.add_milestone("m100", jpy(1_000), jpy(0), **AT))


@pytest.mark.parametrize(("milestones", "withholding", "plan", "code"), [
    ([], False, "tiered", "too_many_items"),
    ([(f"m{n}", jpy(1_000), jpy(0)) for n in range(101)], False, "tiered", "too_many_items"),
    ([("m1", jpy(1_000), jpy(0)), ("m1", jpy(2_000), jpy(0))], False, "tiered",
     "duplicate_item"),
    ([("m1", usd("10"), jpy(0))], False, "tiered", "currency_mismatch"),
    ([("m1", jpy(1_000), usd("0"))], False, "tiered", "currency_mismatch"),
    ([("m1", jpy(1_000), jpy(1_001))], False, "tiered", "tax_exceeds_amount"),
    ([("m1", usd("10"), usd("0"))], True, "usd_standard", "withholding_currency"),
])
def test_invalid_contracts_are_rejected(plans: dict[str, FeePlan], milestones: Any,
                                        withholding: bool, plan: str, code: str) -> None:
    with pytest.raises(Rejected) as refused:
        contract(plans[plan], milestones, withholding)
    assert refused.value.code == code


def test_a_contract_of_exactly_100_milestones_is_accepted(plans: dict[str, FeePlan],
                                                          journal: Journal) -> None:
    escrow = contract(plans["tiered"], [(f"m{n}", jpy(1_000), jpy(0)) for n in range(100)])
    journal.take(escrow)
    assert len(escrow.items) == 100


def test_fees_above_the_gross_are_refused(journal: Journal) -> None:
    # 95 % fee plus 50 % tax on it is more than the gross: the release is refused.
    greedy = FeePlan.from_dict("greedy", {
        "currency": "JPY", "worker_tiers": [{"rate": "0.95"}],
        "worker_fee_tax_included": False, "consumption_tax_rate": "0.5",
    })
    escrow = contract(greedy, [("m1", jpy(1_000), jpy(0))])
    escrow.fund_milestone("m1", jpy(1_000), "pay-1", **step(1))
    escrow.deliver_milestone("m1", **step(2))

    journal.rejects(escrow, "fees_exceed_gross", lambda: escrow.accept_milestone("m1", **AT))


def test_a_rejected_command_after_a_rejection_still_succeeds_later(
        plans: dict[str, FeePlan], journal: Journal) -> None:
    """A refusal leaves the escrow usable: the right command still goes through."""
    escrow = contract(plans["tiered"])
    journal.rejects(escrow, "amount_mismatch",
                    lambda: escrow.fund_milestone("m1", jpy(10_000), "pay-1", **step(1)))

    escrow.fund_milestone("m1", jpy(11_000), "pay-1", **step(2))

    event = journal.one(escrow)
    assert (event.originator_version, event.causation_id) == (2, "mkt-3")
