"""The payouts fold (pure): payout rows from payout events, repeats by position,
ledger and audit rows like any event, and which items a worker payout pays."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from settlement.projections.model.changes import fold
from settlement.projections.model.envelope import Event, parse
from settlement.projections.model.errors import InvariantBroken
from settlement.projections.model.payouts import evolve_payout

PAYABLE, TRANSIT = "liabilities:worker_payable:w1", "liabilities:payouts_in_transit"
CASH = "assets:safeguarded_cash"
ITEMS = [{"job_id": "j1", "item_id": "m1", "amount": "8000"},
         {"job_id": "j2", "item_id": "s1", "amount": "580"}]


def posting(account: str, side: str, amount: str = "8580") -> dict[str, str]:
    return {"account": account, "side": side, "amount": amount, "currency": "JPY"}


def payout_event(name: str, position: int, version: int, payout_id: str = "po-1",
                 **fields: Any) -> Event:
    postings = {
        "payout_initiated": [posting(PAYABLE, "debit"), posting(TRANSIT, "credit")],
        "payout_settled": [posting(TRANSIT, "debit"), posting(CASH, "credit")],
        "payout_failed": [posting(TRANSIT, "debit"), posting(PAYABLE, "credit")],
    }[name]
    data = {"payout_id": payout_id, "position": position, "version": version,
            "causation_id": "payout-run:r1", "party_type": "worker", "party_id": "w1",
            "amount": {"amount": "8580", "currency": "JPY"}, "postings": postings, **fields}
    if name == "payout_initiated":
        data.setdefault("items", ITEMS)
    return parse({"specversion": "1.0", "id": f"settlement-{position}", "source": "settlement",
                  "type": f"settlement.{name}", "subject": payout_id,
                  "time": "2026-12-01T00:00:00+00:00", "data": data})


def test_initiated_then_settled() -> None:
    initiated = payout_event("payout_initiated", 10, 2)
    changes = fold([initiated, payout_event("payout_settled", 12, 3)], {}, {})
    [payout] = changes.payout_rows()
    assert (payout.payout_id, payout.status, payout.amount, payout.position) == (
        "po-1", "settled", Decimal(8580), 12)
    assert [dict(i) for i in payout.items] == ITEMS
    assert [(e.account, e.side) for e in changes.entries] == [
        (PAYABLE, "debit"), (TRANSIT, "credit"), (TRANSIT, "debit"), (CASH, "credit")]
    assert [(a.position, a.job_id) for a in changes.audit] == [(10, None), (12, None)]
    assert changes.paid_out_keys() == [("j1", "m1"), ("j2", "s1")]
    assert {(r.item_id, r.status) for r in changes.payout_items()} == {
        ("m1", "settled"), ("s1", "settled")}


def test_a_failed_payout_marks_its_items_failed() -> None:
    changes = fold([payout_event("payout_initiated", 10, 2),
                    payout_event("payout_failed", 11, 3, reason="closed",
                                 account=PAYABLE)], {}, {})
    assert changes.payout_rows()[0].status == "failed"
    assert {r.status for r in changes.payout_items()} == {"failed"}


def test_repeats_are_told_by_position_whatever_the_batch() -> None:
    first = fold([payout_event("payout_initiated", 10, 2)], {}, {})
    stored = {"po-1": first.payout_rows()[0]}
    again = fold([payout_event("payout_initiated", 10, 2),
                  payout_event("payout_settled", 12, 3)], {}, {}, stored)
    assert again.duplicates == 1 and again.applied == 1
    assert again.payout_rows()[0].status == "settled"


def test_payouts_of_one_party_may_arrive_in_any_order() -> None:
    # Two payouts of one stream (versions 2 and 3) on different partitions.
    later = payout_event("payout_initiated", 20, 3, payout_id="po-2", items=[])
    earlier = payout_event("payout_initiated", 10, 2)
    assert {p.payout_id for p in fold([later, earlier], {}, {}).payout_rows()} == {"po-1",
                                                                                  "po-2"}


@pytest.mark.parametrize("events", [
    ["payout_settled"], ["payout_initiated", "payout_initiated"],
    ["payout_initiated", "payout_settled", "payout_failed"]])
def test_impossible_histories_stop_the_projection(events: list[str]) -> None:
    view = None
    with pytest.raises(InvariantBroken):
        for n, name in enumerate(events, start=1):
            view = evolve_payout(view, payout_event(name, n, n + 1))
