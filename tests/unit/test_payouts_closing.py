"""Closings (SPEC §11) on an in-memory event store: what a closing covers, the
minimum and its 60-day exception, holds, the Zengin file byte for byte, payee-
borne transfer fees, returned transfers, and the snapshot's bank account.

The sample day (2026-11-26, every party verified) pays, by hand (see
test_payouts_run.py): client-a 29,000, worker-1 100,327, worker-2 33,400,
worker-3 8,350; worker-4's 836 is below the ¥1,000 minimum."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from settlement.core.errors import SettlementError
from settlement.core.money import Money
from settlement.payouts.closing import closing_pass
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import payout_run
from settlement.payouts.scan import LedgerScan
from settlement.service.scenario import (
    bank_account,
    cloud_event,
    marketplace_day,
    marketplace_parties,
)
from support import memory
from support.memory import MemoryApp

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
NOVEMBER = date(2026, 11, 30)
AFTER_NOVEMBER = datetime(2026, 12, 1, tzinfo=JST)  # the instant closing 11-30 may start
POLICY = memory.POLICY


@pytest.fixture
def app() -> Iterator[MemoryApp]:
    application = MemoryApp()
    application.apply(marketplace_parties(START, "d1") + marketplace_day(START, "d1"))
    yield application
    application.close()


def closing(app: MemoryApp, day: date = NOVEMBER, now: datetime | None = None,
            policy: PayoutPolicy = POLICY, **kwargs: Any) -> PayoutRunReport:
    now = now or datetime.combine(day + timedelta(days=1), datetime.min.time(), JST)
    return payout_run(app, now, closing=day, policy=policy, **kwargs)


def paid(report: PayoutRunReport) -> dict[str, int]:
    return {p.party_id: int(p.payout.amount.amount) for p in report.payouts}


def held(report: PayoutRunReport) -> dict[str, tuple[str, int]]:
    return {h.party_id: (h.reason, int(h.amount.amount)) for h in report.held}


def update(app: MemoryApp, event_id: str, at: datetime, **data: Any) -> None:
    app.apply([cloud_event(event_id, "party.updated", at, {"party_id": data.pop("party"),
                                                           **data})])


# The golden file of the sample day's closing, typed out field by field (SPEC §11).
HEADER = ("1" + "21" + "0" + "1234567890"
          + "ｾﾂﾄﾙﾒﾝﾄ ﾃﾞﾓ(ｶ" + " " * 27          # 依頼人名: 13 + 27 = 40
          + "1215"                                # 取組日: 12/15, a Tuesday
          + "0001" + "ﾃﾞﾓｷﾞﾝｺｳ" + " " * 7         # 8 + 7 = 15
          + "001" + "ﾎﾝﾃﾝ" + " " * 11 + "1" + "1234567" + " " * 17)
BANK = "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ" + " " * 2                 # ｪ is written ｴ: 13 + 2 = 15
TAIL = "0" + "0000000000" + "0000000000" + "7" + " " + " " * 7
CLIENT_A = ("2" + "0005" + BANK + "001" + "ﾎﾝﾃﾝ" + " " * 11 + "0000" + "1" + "1000001"
            + "ｶ)ｴ-ｼ-" + " " * 24 + "0000029000" + TAIL)        # カ）エーシー
WORKER_1 = ("2" + "0001" + BANK + "001" + "ﾎﾝﾃﾝ" + " " * 11 + "0000" + "1" + "2000001"
            + "ﾔﾏﾀﾞ ﾀﾛｳ" + " " * 22 + "0000100327" + TAIL)
WORKER_2 = ("2" + "0009" + BANK + "123" + "ﾎﾝﾃﾝ" + " " * 11 + "0000" + "1" + "2000002"
            + "ｻﾄｳ ﾊﾅｺ" + " " * 23 + "0000033400" + TAIL)
WORKER_3 = ("2" + "0033" + BANK + "001" + "ﾎﾝﾃﾝ" + " " * 11 + "0000" + "1" + "2000003"
            + "ｼﾞｴ-ﾝ ﾄﾞｳ" + " " * 21 + "0000008350" + TAIL)  # ｼﾞｪｰﾝ ﾄﾞｳ
TRAILER = "8" + "000004" + "000000171077" + " " * 101
END = "9" + " " * 119


def golden(*records: str) -> bytes:
    assert all(len(r.encode("shift_jis")) == 120 for r in records)
    return b"".join(r.encode("shift_jis") + b"\r\n" for r in records)


def test_the_closing_writes_the_golden_file(app: MemoryApp) -> None:
    report = closing(app)
    [file] = report.files
    assert file.content == golden(HEADER, CLIENT_A, WORKER_1, WORKER_2, WORKER_3, TRAILER, END)
    assert (file.transfers, file.total) == (4, 171_077)
    balances = app.balances()
    assert balances["liabilities:payouts_in_transit"] == file.total  # the trailer is the run's
    assert report.run_summary()["files"][0]["sha256"] == file.sha256
    assert held(report) == {"worker-4": ("below_minimum", 836)}


def test_a_closing_may_start_only_after_its_day_and_only_on_a_closing_day(
        app: MemoryApp) -> None:
    for day, now, code in [(NOVEMBER, AFTER_NOVEMBER - timedelta(seconds=1),
                            "closing_not_reached"),
                           (date(2026, 11, 29), AFTER_NOVEMBER, "not_a_closing_day")]:
        with pytest.raises(SettlementError) as refused:
            closing(app, day, now)
        assert refused.value.code == code
    assert not any(type(e).__name__.startswith("PayoutRun") for e in app.stored())


def test_a_closing_runs_once(app: MemoryApp) -> None:
    first = closing(app)
    stored = len(app.stored())
    again = closing(app, now=AFTER_NOVEMBER + timedelta(days=3))
    assert again.repeated and again.created == [] and len(app.stored()) == stored
    assert again.files == first.files and paid(again) == paid(first)


def test_events_from_the_cutoff_on_wait_for_the_next_closing(app: MemoryApp) -> None:
    # Stored before the closing starts, but dated from 12/01 00:00 JST on: the next closing's.
    app.apply(marketplace_day(AFTER_NOVEMBER - timedelta(minutes=1), "d2"))
    assert paid(closing(app)) == {"client-a": 29_000, "worker-1": 100_327,
                                  "worker-2": 33_400, "worker-3": 8_350}
    december = closing(app, date(2026, 12, 15))
    assert paid(december) == {"client-a": 29_000, "worker-1": 100_327, "worker-2": 33_400,
                              "worker-3": 8_350, "worker-4": 1_672}  # 836 twice: paid now
    assert december.window is not None and december.window.payment_day == date(2026, 12, 30)


@pytest.mark.parametrize(("day", "carried"), [
    (date(2026, 11, 30), True),   # next payment day 12/30
    (date(2026, 12, 15), True),   # next payment day 2027-01-15
    (date(2026, 12, 31), False),  # next payment day 2027-01-29, after the due_by 01-25
])
def test_the_minimum_never_carries_an_item_past_its_due_by(app: MemoryApp, day: date,
                                                           carried: bool) -> None:
    # worker-4's submissions were received 2026-11-26 (JST): due by 2027-01-25 00:00 JST.
    report = closing(app, day)
    assert ("worker-4" in held(report)) == carried
    assert ("worker-4" in paid(report)) != carried


def test_holds_leave_the_payable_and_say_why(app: MemoryApp) -> None:
    at = START + timedelta(hours=2)
    update(app, "u-1", at, party="worker-2", kyc_verified=False)
    update(app, "u-2", at, party="worker-3",
           bank_account=bank_account("2000003", "ジェーン・ドウ", "0033"))
    update(app, "u-3", at, party="client-a", bank_account=None)
    report = closing(app)
    assert paid(report) == {"worker-1": 100_327}
    assert held(report) == {"worker-2": ("kyc_missing", 33_400),
                            "worker-3": ("name_not_representable", 8_350),
                            "client-a": ("bank_account_missing", 29_000),
                            "worker-4": ("below_minimum", 836)}
    summary = report.run_summary()
    assert summary["holds"] == {"bank_account_missing": 1, "kyc_missing": 1,
                                "name_not_representable": 1}
    assert summary["totals"]["JPY"]["held"] == "70750"
    assert app.balances()["liabilities:worker_payable:worker-2"] == 33_400
    assert report.files[0].transfers == 1


def test_a_payee_borne_fee_is_the_banks_charge_booked_tax_included(app: MemoryApp) -> None:
    update(app, "u-1", START + timedelta(hours=2), party="worker-1", transfer_fee_bearer="payee")
    update(app, "u-2", START + timedelta(hours=2), party="worker-2", transfer_fee_bearer="payee")
    report = closing(app)
    payouts = {p.party_id: p.payout for p in report.payouts}
    # worker-1 banks at the requester's bank (0001): same bank, 330 above ¥30,000;
    # worker-2 at 0009: another bank, 660. Tax included: floor(330 × 0.1 / 1.1) = 30.
    assert (payouts["worker-1"].transfer_fee, payouts["worker-1"].transfer_fee_tax) == (
        Money(330, "JPY"), Money(30, "JPY"))
    assert payouts["worker-2"].transfer_fee == Money(660, "JPY")
    assert payouts["worker-3"].transfer_fee == Money(0, "JPY")  # the platform bears it
    balances = app.balances()
    assert balances["revenue:transfer_fees"] == 300 + 600
    assert balances["liabilities:payouts_in_transit"] == 171_077 - 330 - 660
    assert report.files[0].total == 171_077 - 990
    assert b"0000099997" in report.files[0].content  # 100,327 − 330 sent to worker-1
    assert report.run_summary()["totals"]["JPY"] == {
        "paid": "171077", "fees": "990", "sent": "170087", "carried_over": "836"}


def test_a_failed_payout_with_a_fee_reverses_every_line(app: MemoryApp) -> None:
    update(app, "u-1", START + timedelta(hours=2), party="worker-1", transfer_fee_bearer="payee")
    before = app.balances()
    payout = next(p.payout for p in closing(app).payouts if p.party_id == "worker-1")
    app.result("payout.failed", "res-1", AFTER_NOVEMBER, payout_id=payout.payout_id,
               reason="口座なし")
    after = app.balances()
    for account in ("revenue:transfer_fees", "liabilities:worker_payable:worker-1"):
        assert after.get(account, 0) == before.get(account, 0)


def test_a_returned_transfer_is_payable_again_and_holds_the_party(app: MemoryApp) -> None:
    update(app, "u-1", START + timedelta(hours=2), party="worker-1", transfer_fee_bearer="payee")
    payout = next(p.payout for p in closing(app).payouts if p.party_id == "worker-1")
    cash = app.balances()["assets:safeguarded_cash"]
    later = AFTER_NOVEMBER + timedelta(days=1)
    app.result("payout.settled", "res-1", later, payout_id=payout.payout_id, bank_ref="b-1")
    with pytest.raises(SettlementError) as refused:  # only a settled transfer comes back
        app.result("payout.returned", "res-x", later, payout_id="po-unknown", reason="x")
    assert refused.value.code == "unknown_payout"
    returned = app.result("payout.returned", "res-2", later, payout_id=payout.payout_id,
                          reason="組戻し")
    assert returned.payouts[payout.payout_id].status == "returned"
    balances = app.balances()
    assert balances["liabilities:worker_payable:worker-1"] == 100_327 - 330  # what was sent
    assert balances["assets:safeguarded_cash"] == cash  # out and back in
    assert balances["revenue:transfer_fees"] == 300  # the bank did charge it
    # The application holds the party; here the party's stream is told by hand.
    party = app.repository.get(_party_id("worker-1"))
    party.transfer_returned(payout.payout_id, causation_id="res-2", at=later)
    app.save(party)
    december = closing(app, date(2026, 12, 15))
    assert held(december)["worker-1"] == ("bank_account_returned", 99_997)
    update(app, "u-9", later, party="worker-1",
           bank_account=bank_account("7777777", "ヤマダ タロウ", "0001"))
    december_end = closing(app, date(2026, 12, 31))
    again = next(p.payout for p in december_end.payouts if p.party_id == "worker-1")
    assert again.amount == Money(99_997, "JPY") and again.sent == Money(99_667, "JPY")
    assert again.bank_account is not None and again.bank_account.account_number == "7777777"
    assert {i["item_id"] for i in again.items} == {i["item_id"] for i in payout.items}


def _party_id(party_id: str) -> Any:
    from settlement.parties import party_stream_id

    return party_stream_id(party_id)


class UpdatedAfterSnapshot(LedgerScan):
    """A scan before whose first read the marketplace changes worker-1's account."""

    def __init__(self, app: MemoryApp) -> None:
        super().__init__()
        self.app, self.done = app, False

    def advance(self, app: Any, *turned: Any) -> int:
        if not self.done:
            self.done = True
            update(self.app, "u-late", START + timedelta(hours=3), party="worker-1",
                   bank_account=bank_account("9999999", "ヤマダ タロウ", "0001"))
        return super().advance(app, *turned)


def test_the_run_pays_into_the_account_of_its_snapshot(app: MemoryApp) -> None:
    report = closing(app, scan=UpdatedAfterSnapshot(app))
    payout = next(p.payout for p in report.payouts if p.party_id == "worker-1")
    assert payout.bank_account is not None and payout.bank_account.account_number == "2000001"
    assert WORKER_1.encode("shift_jis") in report.files[0].content
    later = closing(app, date(2026, 12, 15))  # the next run sees the new account
    assert later.payouts == [] and "worker-1" not in held(later)


def test_a_now_run_applies_the_same_minimum_and_holds(app: MemoryApp) -> None:
    update(app, "u-1", START + timedelta(hours=2), party="worker-2", kyc_verified=False)
    report = payout_run(app, START + timedelta(days=1), policy=POLICY)
    assert held(report) == {"worker-2": ("kyc_missing", 33_400),
                            "worker-4": ("below_minimum", 836)}
    assert report.window is not None and report.window.payment_day == date(2026, 11, 30)
    assert sum(Decimal(p.payout.amount.amount) for p in report.payouts) == 171_077 - 33_400


def test_the_timer_runs_a_closing_once_its_day_has_ended_by_the_events_time(
        app: MemoryApp) -> None:
    wall = datetime(2027, 1, 10, tzinfo=JST)  # the process's clock: far past both closings
    assert closing_pass(app, wall, POLICY) is None  # the last event is of 11/26: none ended
    update(app, "u-1", datetime(2026, 12, 1, 0, 5, tzinfo=JST), party="worker-5", name="x")
    report = closing_pass(app, wall, POLICY)
    assert report is not None and report.run_id == "closing-2026-11-30"
    assert closing_pass(app, wall, POLICY) is None  # it ran once


def test_the_timer_runs_no_closing_of_days_before_the_log_began() -> None:
    fresh = MemoryApp()
    fresh.apply(marketplace_parties(AFTER_NOVEMBER + timedelta(days=2), "late"))
    stored = len(fresh.stored())
    assert closing_pass(fresh, datetime(2027, 1, 10, tzinfo=JST), POLICY) is None
    assert len(fresh.stored()) == stored
