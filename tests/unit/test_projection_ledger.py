"""The ledger projection: entries of hand-checked postings, and balance deltas."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from settlement.core.fees import FeePlan
from settlement.projections.model.envelope import parse
from settlement.projections.model.errors import MalformedEvent, Unbalanced
from settlement.projections.model.ledger import BalanceDelta, Entry, balance_deltas, entries
from settlement.service.scenario import marketplace_day
from support.projections import cloud_events, find

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def day(plans: dict[str, FeePlan]) -> list[dict]:
    return cloud_events(marketplace_day(START, "d"), plans)


def lines(event: dict) -> list[tuple[int, str, str, Decimal, str]]:
    return [(e.line, e.account, e.side, e.amount, e.currency) for e in entries(parse(event))]


def test_entry_carries_the_event_coordinates(day: list[dict]) -> None:
    event = find(day, "competition_funded", "d-contest")
    first = entries(parse(event))[0]
    assert first == Entry(12, 1, datetime(2026, 11, 26, 9, 12, tzinfo=UTC), "d-contest",
                          "settlement.competition_funded", "assets:safeguarded_cash", "debit",
                          Decimal("52750"), "JPY")


def test_funding_with_a_client_fee(day: list[dict]) -> None:
    # Flat plan: 5.5% tax-included client fee on 50,000 = 2,750 = 2,500 + 250 tax.
    assert lines(find(day, "competition_funded", "d-contest")) == [
        (1, "assets:safeguarded_cash", "debit", Decimal("52750"), "JPY"),
        (2, "liabilities:escrow:d-contest", "credit", Decimal("50000"), "JPY"),
        (3, "revenue:platform_fees:client", "credit", Decimal("2500"), "JPY"),
        (4, "liabilities:consumption_tax", "credit", Decimal("250"), "JPY"),
    ]


def test_release_with_withholding(day: list[dict]) -> None:
    # Tiered: 20% of 100,000 + 10% of 10,000 = 21,000, tax 2,100; withholding on
    # 110,000 less its 10,000 tax: floor(100,000 × 0.1021) = 10,210.
    assert lines(find(day, "milestone_released", "d-project")) == [
        (1, "liabilities:escrow:d-project", "debit", Decimal("110000"), "JPY"),
        (2, "liabilities:worker_payable:worker-1", "credit", Decimal("76690"), "JPY"),
        (3, "revenue:platform_fees:worker", "credit", Decimal("21000"), "JPY"),
        (4, "liabilities:consumption_tax", "credit", Decimal("2100"), "JPY"),
        (5, "liabilities:withholding_tax:client-a", "credit", Decimal("10210"), "JPY"),
    ]


def test_refund_when_a_task_closes(day: list[dict]) -> None:
    # Ten slots of 500: one approved, one pending, one rejected → 8 refunded.
    assert lines(find(day, "task_closed", "d-task")) == [
        (1, "liabilities:escrow:d-task", "debit", Decimal("4000"), "JPY"),
        (2, "liabilities:client_refundable:client-a", "credit", Decimal("4000"), "JPY"),
    ]


def test_dispute_resolution_releases_and_refunds(day: list[dict]) -> None:
    # 30,000 to the worker (cumulative 110,000: the 10% tier), 25,000 back.
    event = find(day, "dispute_resolved", "d-project")
    assert lines(event) == [
        (1, "liabilities:escrow:d-project", "debit", Decimal("30000"), "JPY"),
        (2, "liabilities:worker_payable:worker-1", "credit", Decimal("23637"), "JPY"),
        (3, "revenue:platform_fees:worker", "credit", Decimal("3000"), "JPY"),
        (4, "liabilities:consumption_tax", "credit", Decimal("300"), "JPY"),
        (5, "liabilities:withholding_tax:client-a", "credit", Decimal("3063"), "JPY"),
        (6, "liabilities:escrow:d-project", "debit", Decimal("25000"), "JPY"),
        (7, "liabilities:client_refundable:client-a", "credit", Decimal("25000"), "JPY"),
    ]
    assert balance_deltas(entries(parse(event))) == [
        BalanceDelta("liabilities:client_refundable:client-a", "JPY", Decimal(0),
                     Decimal("25000")),
        BalanceDelta("liabilities:consumption_tax", "JPY", Decimal(0), Decimal("300")),
        BalanceDelta("liabilities:escrow:d-project", "JPY", Decimal("55000"), Decimal(0)),
        BalanceDelta("liabilities:withholding_tax:client-a", "JPY", Decimal(0), Decimal("3063")),
        BalanceDelta("liabilities:worker_payable:worker-1", "JPY", Decimal(0), Decimal("23637")),
        BalanceDelta("revenue:platform_fees:worker", "JPY", Decimal(0), Decimal("3000")),
    ]


def test_events_without_postings_have_no_entries(day: list[dict]) -> None:
    assert entries(parse(find(day, "milestone_delivered", "d-project"))) == []


def test_deltas_of_the_whole_day_balance_per_currency(day: list[dict]) -> None:
    deltas = balance_deltas(e for event in day for e in entries(parse(event)))
    assert sum(d.debits for d in deltas) == sum(d.credits for d in deltas) == Decimal("443025")
    assert [d.account for d in deltas] == sorted(d.account for d in deltas)
    cash = next(d for d in deltas if d.account == "assets:safeguarded_cash")
    obligations = sum(d.credits - d.debits for d in deltas if d is not cash)
    assert cash.debits - cash.credits == obligations == Decimal("223025")


@pytest.mark.parametrize(("line", "change"), [
    (1, {"amount": "52751"}),  # debits above credits
    (2, {"currency": "USD"}),  # balanced amounts, but across currencies
    (3, {"side": "both"}),
    (4, {"amount": "0"}),
])
def test_unbalanced_or_invalid_postings_are_refused(day: list[dict], line: int,
                                                     change: dict) -> None:
    event = copy.deepcopy(find(day, "competition_funded", "d-contest"))
    event["data"]["postings"][line - 1].update(change)
    with pytest.raises(Unbalanced):
        entries(parse(event))


def test_an_amount_that_is_not_a_decimal_string_is_refused(day: list[dict]) -> None:
    event = copy.deepcopy(find(day, "competition_funded", "d-contest"))
    event["data"]["postings"][0]["amount"] = 52750.0
    with pytest.raises(MalformedEvent):
        entries(parse(event))
