"""The Part II rows of the projections (pure): parties, payout runs and holds from
the events the relay publishes (each carries everything its row needs; the latest
position wins), a returned payout in the payouts fold, and what each is keyed by."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from settlement.core.money import Money
from settlement.parties import Party
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.runs import PayoutRun
from settlement.payouts.schedule import closing_window
from settlement.projections.model.changes import fold
from settlement.projections.model.envelope import parse
from settlement.projections.model.payouts import evolve_payout
from settlement.relay.cloudevents import to_cloud_event
from settlement.service.scenario import bank_account
from support.memory import POLICY

AT = datetime(2026, 12, 1, tzinfo=UTC)


def published(events: list[Any], first: int = 1) -> list[Any]:
    return [parse(to_cloud_event(first + n, event)) for n, event in enumerate(events)]


def party_events() -> list[Any]:
    party = Party.register("w-1", {"kind": "individual", "name": "x", "name_kana": "ｴｯｸｽ",
                                   "address": "東京都", "kyc_verified": True,
                                   "bank_account": bank_account("1234567", "ｴｯｸｽ")},
                           causation_id="m-1", at=AT)
    party.transfer_returned("po-9", causation_id="r-1", at=AT)
    return list(party.collect_events())


def test_a_party_row_is_its_latest_event_the_number_masked() -> None:
    events = published(party_events())
    changes = fold(list(reversed(events)), {}, {})  # order within the batch: latest wins
    row = changes.parties["w-1"]
    assert (row.hold, row.returned_payout_id, row.position) == ("bank_account_returned",
                                                                "po-9", 2)
    assert row.bank_account is not None and row.bank_account["account_number"] == "****567"
    assert [a.position for a in changes.keyed_audit] == [2, 1]
    assert events[0].data["party_id"] == "w-1" and changes.entries == []


def run_events() -> list[Any]:
    window = closing_window(date(2026, 11, 30), AT)
    run = PayoutRun.start(window, 41, POLICY)
    run.complete({"payouts": 1, "files": []}, AT)
    party = PartyPayouts.open("worker", "w-1", run_id=window.run_id, at=AT)
    party.hold(window.run_id, Money(836, "JPY"), "below_minimum", None, AT)
    return [*run.collect_events(), *party.collect_events()[1:]]


def test_run_and_hold_rows_and_their_keys() -> None:
    started, completed, held = run_events()
    clouds = [to_cloud_event(n, e) for n, e in enumerate((started, completed, held), start=5)]
    assert [c["subject"] for c in clouds] == ["closing-2026-11-30", "closing-2026-11-30", "w-1"]
    changes = fold([parse(c) for c in clouds], {}, {})
    run = changes.runs["closing-2026-11-30"]
    assert (run.status, run.payment_day, run.as_of_position, run.summary) == (
        "completed", date(2026, 12, 15), 41, {"payouts": 1, "files": []})
    [hold] = changes.holds.values()
    assert (hold.party_id, hold.amount, hold.reason) == ("w-1", Decimal(836), "below_minimum")
    assert PayoutPolicy.from_json(started.policy) == POLICY


def test_a_returned_payout_pays_its_items_no_more() -> None:
    party = PartyPayouts.open("worker", "w-1", run_id="r", at=AT)
    payout_id = party.initiate("r", Money(8580, "JPY"), 1, AT,
                               [{"job_id": "j", "item_id": "m", "amount": "8580"}])
    party.settle(payout_id, "b-1", causation_id="x-1", at=AT)
    party.return_(payout_id, "組戻し", causation_id="x-2", at=AT)
    events = published(party.collect_events()[1:])
    assert [e.name for e in events] == ["payout_initiated", "payout_settled", "payout_returned"]
    assert all(e.data["payout_id"] == payout_id for e in events)
    view = None
    for event in events:
        view = evolve_payout(view, event)
    assert view is not None and view.status == "returned" and view.failed_at == AT
    changes = fold(events, {}, {})
    assert [r.status for r in changes.payout_items()] == ["returned"]
    cash = sum(e.amount if e.side == "debit" else -e.amount for e in changes.entries
               if e.account == "assets:safeguarded_cash")
    assert cash == 0  # out when settled, back when returned
