"""Payout runs and payout results on an in-memory event store: what is paid (checked by
hand against the sample day), the batch for the bank, repeats, stale views and results.
Every party of the sample day is registered and verified (`marketplace_parties`);
worker-4's 836 yen is below the ¥1,000 minimum and carried over."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from settlement.core.commands import Command
from settlement.core.errors import SettlementError
from settlement.core.money import Money
from settlement.ledger.balances import trial_balances
from settlement.ledger.payout_rules import PartyType, payout_account
from settlement.payouts import PartyPayouts, apply_payout_result, party_payouts_id, payout_id_of
from settlement.payouts.closing import run_payouts_cli
from settlement.payouts.export import write_csv
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import payout_run
from settlement.payouts.scan import LedgerScan
from settlement.service.scenario import marketplace_day, marketplace_parties
from support import memory

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
RUN = "run-20261127T000000Z"
# The sample day, by hand (SPEC §5):
# worker-1: m1 110,000 (tax 10,000) tiered: fee 21,000, fee tax 2,100, withholding
#   floor(100,000 × 0.1021) = 10,210 → 76,690; the dispute releases 30,000 of m2 on a
#   cumulative 110,000: fee 3,000, fee tax 300, withholding floor(30,000 × 0.1021) = 3,063
#   → 23,637. Payable 100,327.
# worker-2: award 40,000, flat 16.5 % tax-included: fee total 6,600 → 33,400.
# worker-3: award 10,000: fee total 1,650 → 8,350.
# worker-4: two task submissions of 500: fee total floor(82.5) = 82 each → 2 × 418 = 836.
# client-a: the dispute refunds 25,000 and closing the task 8 unfilled slots × 500 = 4,000.
DAY_PAYABLE: dict[tuple[PartyType, str], int] = {
    ("client", "client-a"): 29_000, ("worker", "worker-1"): 100_327,
    ("worker", "worker-2"): 33_400, ("worker", "worker-3"): 8_350, ("worker", "worker-4"): 836}
# What a run pays: worker-4's 836 is below the minimum and carried over.
DAY_PAID = {party: amount for party, amount in DAY_PAYABLE.items() if amount >= 1_000}
PAID_TOTAL = sum(DAY_PAID.values())  # 171,077
class MemoryApp(memory.MemoryApp):
    def result(self, type_: str, command_id: str, at: datetime = NOW,  # type: ignore[override]
               **data: str) -> PartyPayouts:
        return super().result(type_, command_id, at, **data)


@pytest.fixture
def app() -> Iterator[MemoryApp]:
    application = MemoryApp()
    application.apply(marketplace_parties(START, "d1") + marketplace_day(START, "d1"))
    yield application
    application.close()


def paid(lines: list[Any]) -> dict[tuple[PartyType, str], int]:
    return {(line.party_type, line.party_id): int(line.amount.amount) for line in lines}


def balance(app: MemoryApp, account: str, currency: str = "JPY") -> Decimal:
    ledger = trial_balances(app.postings())[currency]
    return next((a.balance for a in ledger.accounts if a.account == account), Decimal(0))


def test_one_payout_per_party_with_a_positive_balance(app: MemoryApp) -> None:
    report = payout_run(app, NOW)
    assert report.run_id == RUN
    assert paid(report.created) == DAY_PAID
    assert report.existing == [] and report.failed == [] and report.overdrawn == []
    assert report.totals() == {"JPY": Decimal(PAID_TOTAL)}
    assert report.as_of_position == 31  # 7 parties and the day's 24 events
    for party in DAY_PAID:
        assert balance(app, payout_account(*party)) == 0
    assert balance(app, "liabilities:worker_payable:worker-4") == 836
    assert [(h.party_id, h.reason, h.amount) for h in report.held] == [
        ("worker-4", "below_minimum", Money(836, "JPY"))]
    assert balance(app, "liabilities:payouts_in_transit") == PAID_TOTAL
    assert all(tb.balanced for tb in trial_balances(app.postings()).values())


def test_the_batch_for_the_bank(app: MemoryApp) -> None:
    report = payout_run(app, NOW)
    out = io.StringIO()
    write_csv(report.batch, out)
    rows = out.getvalue().splitlines()
    assert rows[0] == "payout_id,party_type,party_id,amount,currency,account"
    stream = party_payouts_id("worker", "worker-1").hex
    assert rows[1:3] == [
        f"{payout_id_of(RUN, 'client', 'client-a', 'JPY')},client,client-a,29000,JPY,"
        "liabilities:client_refundable:client-a",
        f"po-{RUN}-{stream}-JPY,worker,worker-1,100327,JPY,liabilities:worker_payable:worker-1",
    ]
    assert len(rows) == 1 + len(DAY_PAID)


def test_a_repeated_run_stores_nothing_and_exports_the_same_batch(app: MemoryApp) -> None:
    first = payout_run(app, NOW)
    stored = len(app.stored())
    again = payout_run(app, NOW)
    assert len(app.stored()) == stored
    assert again.created == [] and again.batch == first.batch


def test_a_later_run_pays_only_what_was_released_since(app: MemoryApp) -> None:
    payout_run(app, NOW)
    app.apply(marketplace_day(START + timedelta(days=1), "d2"))
    later = payout_run(app, NOW + timedelta(days=1))
    # Two days of worker-4's tasks reach the minimum: both are paid now.
    assert paid(later.created) == {**DAY_PAID, ("worker", "worker-4"): 2 * 836}
    assert balance(app, "liabilities:payouts_in_transit") == 2 * 171_913
    assert payout_run(app, NOW + timedelta(days=2)).created == []


def test_each_currency_is_paid_on_its_own(app: MemoryApp) -> None:
    usd = {"amount": "100.00", "currency": "USD"}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("project.contracted", {"client_id": "client-u", "worker_id": "worker-1",
                                "fee_plan": "usd", "milestones": [{"milestone_id": "m1",
                                                                   "amount": usd}]}),
        ("project.milestone_funded", {"milestone_id": "m1", "amount": usd, "payment_ref": "p"}),
        ("project.milestone_delivered", {"milestone_id": "m1"}),
        ("project.milestone_accepted", {"milestone_id": "m1"}),
    ]
    app.apply([{"id": f"u-{n}", "type": type_, "time": START.isoformat(),
                "data": {"job_id": "usd-1", **data}} for n, (type_, data) in enumerate(steps)])
    report = payout_run(app, NOW)
    worker_1 = sorted((line.payout_id, line.amount) for line in report.created
                      if line.party_id == "worker-1")
    # 100.00 less a 10 % fee and 10 % tax on it: 89.00.
    assert [amount for _, amount in worker_1] == [Money(100_327, "JPY"), Money("89.00", "USD")]
    assert report.totals() == {"JPY": Decimal(PAID_TOTAL), "USD": Decimal("89.00")}


class RacedScan(LedgerScan):
    """A scan after whose first read another run pays everybody."""

    def __init__(self, rival_run_id: str) -> None:
        super().__init__()
        self.rival_run_id = rival_run_id
        self.rival: PayoutRunReport | None = None

    def advance(self, app: Any, *turned: Any) -> int:
        read = super().advance(app, *turned)
        if self.rival is None:
            self.rival = payout_run(app, NOW, self.rival_run_id)
        return read


@pytest.mark.parametrize("rival_run_id", ["run-other", "run-late"])
def test_a_run_on_a_stale_view_decides_again_and_pays_nothing_twice(
        app: MemoryApp, rival_run_id: str) -> None:
    scan = RacedScan(rival_run_id)
    late = payout_run(app, NOW, "run-late", scan=scan)
    # The first save conflicts; reading on then shows every party paid.
    assert late.conflicts == 1 and late.created == [] and late.failed == []
    assert scan.rival is not None and paid(scan.rival.created) == DAY_PAID
    # The same run id in both: the loser exports the winner's payouts as its batch.
    assert paid(late.batch) == (DAY_PAID if rival_run_id == "run-late" else {})
    assert balance(app, "liabilities:payouts_in_transit") == PAID_TOTAL


def test_a_failed_payout_is_paid_again_by_the_next_run(app: MemoryApp) -> None:
    first = payout_run(app, NOW)
    payout = next(line for line in first.created if line.party_id == "worker-2")
    party = app.result("payout.failed", "res-1", payout_id=payout.payout_id, reason="closed")
    assert party.payouts[payout.payout_id].status == "failed"
    assert balance(app, "liabilities:worker_payable:worker-2") == 33_400
    assert balance(app, "liabilities:payouts_in_transit") == PAID_TOTAL - 33_400
    assert payout_run(app, NOW).created == []  # the same run stays a no-op
    again = payout_run(app, NOW + timedelta(hours=1))
    assert paid(again.created) == {("worker", "worker-2"): 33_400}
    # The failed payout's items are the ones paid again, and they add up to it.
    items = [p.items for p in party.payouts.values()]
    retry = app.repository.get(party.id).payouts[again.created[0].payout_id].items
    assert retry == items[0] and sum(Decimal(i["amount"]) for i in retry) == 33_400


def test_each_payout_names_the_items_it_pays(app: MemoryApp) -> None:
    run = payout_run(app, NOW)
    for line in run.created:
        party = app.repository.get(party_payouts_id(line.party_type, line.party_id))
        items = party.payouts[line.payout_id].items
        assert items and sum(Decimal(i["amount"]) for i in items) == line.amount.amount
    later = payout_run(app, NOW + timedelta(hours=1))
    assert later.created == []  # every item is in a live payout already


def test_a_settled_payout_leaves_cash(app: MemoryApp) -> None:
    first = payout_run(app, NOW)
    cash = balance(app, "assets:safeguarded_cash")
    payout = next(line for line in first.created if line.party_id == "worker-1")
    party = app.result("payout.settled", "res-1", payout_id=payout.payout_id, bank_ref="b-9")
    assert party.payouts[payout.payout_id].bank_ref == "b-9"
    assert balance(app, "assets:safeguarded_cash") == cash - 100_327
    assert balance(app, "liabilities:payouts_in_transit") == PAID_TOTAL - 100_327
    assert payout_run(app, NOW + timedelta(hours=1)).created == []
    assert all(tb.balanced for tb in trial_balances(app.postings()).values())


def test_an_overdrawn_account_is_reported(app: MemoryApp, tmp_path: Path) -> None:
    # Only a bug could do this: a payout of more than the balance, stored directly.
    party = PartyPayouts.open("worker", "worker-5", run_id="manual", at=NOW)
    party.initiate("manual", Money(1, "JPY"), 0, NOW)
    app.save(party)
    out = io.StringIO()
    assert run_payouts_cli(app, NOW, tmp_path / "batch.csv", out=out) == 1
    assert json.loads(out.getvalue())["overdrawn"] == [
        "liabilities:worker_payable:worker-5 JPY -1"]


def test_the_cli_hook_exports_the_batch_and_prints_a_summary(app: MemoryApp,
                                                             tmp_path: Path) -> None:
    out = io.StringIO()
    path = tmp_path / "batch.csv"
    assert run_payouts_cli(app, NOW, path, out=out) == 0
    summary = json.loads(out.getvalue())
    run = summary.pop("run")
    assert summary == {"run_id": RUN, "as_of_position": 31, "closing": None,
                       "payment_day": "2026-11-30", "created": 4, "skipped": 0,
                       "repeated": False, "totals": {"JPY": "171077"}, "conflicts": 0,
                       "failed": [], "overdrawn": [],
                       "held_parties": [{"party": "worker:worker-4", "reason": "below_minimum",
                                         "amount": "836", "currency": "JPY",
                                         "due_by": "2027-01-25T00:00:00+09:00"}]}
    assert run["payouts"] == 4 and run["carried_over"] == 1 and run["held"] == 0
    assert run["totals"] == {"JPY": {"paid": "171077", "fees": "0", "sent": "171077",
                                     "carried_over": "836"}}
    assert [(f["transfers"], f["total"]) for f in run["files"]] == [(4, "171077")]
    assert len(path.read_text().splitlines()) == 1 + len(DAY_PAID)
    assert [p.name for p in tmp_path.iterdir()] == ["batch.csv"]  # no partial file left


def test_now_must_carry_a_timezone(app: MemoryApp) -> None:
    with pytest.raises(SettlementError) as refused:
        payout_run(app, datetime(2026, 11, 27))
    assert refused.value.code == "time_format"


# Payout results ---------------------------------------------------------------------------


@pytest.fixture
def payout(app: MemoryApp) -> str:
    report = payout_run(app, NOW)
    return next(line.payout_id for line in report.created if line.party_id == "worker-1")


RESULT_REJECTIONS = [
    ("payout.settled", {"bank_ref": "b-1"}, "missing_field"),
    ("payout.settled", {"payout_id": "po x", "bank_ref": "b-1"}, "invalid_identifier"),
    ("payout.settled", {"payout_id": "{payout}"}, "missing_field"),
    ("payout.settled", {"payout_id": "{payout}", "bank_ref": "b 1"}, "invalid_identifier"),
    ("payout.failed", {"payout_id": "{payout}", "reason": 5}, "invalid_field"),
    ("payout.failed", {"payout_id": "{payout}", "reason": "x" * 2001}, "invalid_field"),
    ("payout.reversed", {"payout_id": "{payout}"}, "unknown_type"),
    ("payout.settled", {"payout_id": "mkt-000123", "bank_ref": "b-1"}, "unknown_payout"),
    ("payout.settled", {"payout_id": "{other_run}", "bank_ref": "b-1"}, "unknown_payout"),
    ("payout.failed", {"payout_id": "{no_stream}", "reason": "x"}, "unknown_payout"),
    ("payout.failed", {"payout_id": "{escrow}", "reason": "x"}, "unknown_payout"),
]


@pytest.mark.parametrize(("type_", "data", "code"), RESULT_REJECTIONS)
def test_result_rejections(app: MemoryApp, payout: str, type_: str, data: dict[str, Any],
                           code: str) -> None:
    escrow_stream = app.escrows["d1-project"].id.hex
    ids = {"payout": payout, "other_run": payout.replace(RUN, "run-x"),
           "no_stream": payout_id_of(RUN, "worker", "nobody", "JPY"),
           "escrow": f"po-{RUN}-{escrow_stream}-JPY"}
    data = {k: v.format(**ids) if isinstance(v, str) else v for k, v in data.items()}
    with pytest.raises(SettlementError) as refused:
        apply_payout_result(app.repository, Command.create("res-1", type_, NOW, data))
    assert refused.value.code == code, refused.value


def test_results_in_one_batch_see_each_other(app: MemoryApp, payout: str) -> None:
    working: dict[UUID, PartyPayouts] = {}
    settle = Command.create("res-1", "payout.settled", NOW, {"payout_id": payout, "bank_ref": "b"})
    fail = Command.create("res-2", "payout.failed", NOW, {"payout_id": payout, "reason": "x"})
    party = apply_payout_result(app.repository, settle, working)
    assert working == {party.id: party}
    with pytest.raises(SettlementError) as refused:
        apply_payout_result(app.repository, fail, working)
    assert refused.value.code == "payout_already_settled"


def test_results_read_the_stream_as_stored_not_a_cached_copy(app: MemoryApp,
                                                             payout: str) -> None:
    app.result("payout.settled", "res-1", payout_id=payout, bank_ref="b-1")
    with pytest.raises(SettlementError) as refused:
        app.result("payout.failed", "res-2", payout_id=payout, reason="late")
    assert refused.value.code == "payout_already_settled"
