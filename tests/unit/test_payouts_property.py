"""Property (SPEC §11): for any set of payables and holds, a closing's Zengin file
total equals the ledger's `payouts_in_transit` movement of the run, and for
every party what was carried over, held and paid (sent + fee) is what was
payable."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.payouts.run import payout_run
from settlement.service.scenario import bank_account, cloud_event
from support.memory import POLICY, MemoryApp

JST = ZoneInfo("Asia/Tokyo")
CLOSING = date(2026, 11, 30)
NOW = datetime(2026, 12, 1, tzinfo=JST)
TRANSIT = "liabilities:payouts_in_transit"

parties = st.lists(st.fixed_dictionaries({
    "amount": st.integers(1, 300_000),
    "registered": st.booleans(),
    "kyc": st.booleans(),
    "account": st.sampled_from(["same_bank", "other_bank", "kanji", None]),
    "payee": st.booleans(),
    "delivered_days_ago": st.integers(0, 80),
}), min_size=1, max_size=6)


def events_of(n: int, party: dict[str, Any]) -> list[dict[str, Any]]:
    worker, job = f"w-{n}", f"job-{n}"
    delivered = NOW - timedelta(days=party["delivered_days_ago"], hours=1)
    out = []
    if party["registered"]:
        account = None if party["account"] is None else bank_account(
            f"{n:07d}", "山田" if party["account"] == "kanji" else "ﾔﾏﾀﾞ",
            "0001" if party["account"] == "same_bank" else "0009")
        out.append(cloud_event(f"p-{n}", "party.registered", delivered - timedelta(days=1), {
            "party_id": worker, "kind": "individual", "name": "x", "name_kana": "ｴｯｸｽ",
            "bank_account": account, "kyc_verified": party["kyc"],
            "transfer_fee_bearer": "payee" if party["payee"] else "platform"}))
    money = {"amount": str(party["amount"]), "currency": "JPY"}
    steps = [("project.contracted", {"client_id": "c", "worker_id": worker,
                                     "fee_plan": "tiered",
                                     "milestones": [{"milestone_id": "m", "amount": money}]}),
             ("project.milestone_funded", {"milestone_id": "m", "amount": money,
                                           "payment_ref": "p"}),
             ("project.milestone_delivered", {"milestone_id": "m"}),
             ("project.milestone_accepted", {"milestone_id": "m"})]
    out += [cloud_event(f"{job}-{k}", type_, delivered + timedelta(minutes=k),
                        {"job_id": job, **data}) for k, (type_, data) in enumerate(steps)]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parties)
def test_the_file_is_the_transit_movement_and_nothing_is_lost(party_list: list[Any]) -> None:
    app = MemoryApp()
    try:
        app.apply([e for n, p in enumerate(party_list) for e in events_of(n, p)])
        before = app.balances()
        report = payout_run(app, NOW, closing=CLOSING, policy=POLICY)
        after = app.balances()
    finally:
        app.close()
    moved = after.get(TRANSIT, Decimal(0)) - before.get(TRANSIT, Decimal(0))
    assert sum(f.total for f in report.files) == moved
    assert sum(p.payout.sent.amount for p in report.payouts) == moved
    paid = {p.party_id: p.payout for p in report.payouts}
    kept = {h.party_id: h.amount.amount for h in report.held}
    for n in range(len(party_list)):
        account = f"liabilities:worker_payable:w-{n}"
        payable = before.get(account, Decimal(0))
        payout = paid.get(f"w-{n}")
        fee = Decimal(0) if payout is None or payout.transfer_fee is None else (
            payout.transfer_fee.amount)
        sent_and_fee = Decimal(0) if payout is None else payout.sent.amount + fee
        assert kept.get(f"w-{n}", Decimal(0)) + sent_and_fee == payable
        assert (f"w-{n}" in paid) != (f"w-{n}" in kept)  # paid or kept, never both
        assert after.get(account, Decimal(0)) == kept.get(f"w-{n}", Decimal(0))
