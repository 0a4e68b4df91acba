"""A month of charges for the invoice tests, computed by hand (SPEC §5, §12).

`month_of_releases(plan, …)`: one project for one worker of five milestones,
each funded, delivered and accepted in November 2026 (JST).

- tiered (tax-excluded, 20 % up to 100,000): milestone 11,025 → fee
  floor(2,205) = 2,205, fee tax floor(220.5) = 220, charge 2,425. Five:
  12,125 charged, 1,100 posted; invoice tax floor(12,125 × 0.1 / 1.1) =
  floor(1,102.27) = 1,102: a true-up of 2.
- flat (tax-included 16.5 %): milestone 10,100 → fee total floor(1,666.5) =
  1,666, fee tax floor(151.45) = 151. Five: 8,330 charged, 755 posted;
  invoice tax floor(757.27) = 757: a true-up of 2. The client pays a client fee
  of 5.5 % tax-included on each funding: floor(555.5) = 555, tax floor(50.45)
  = 50. Five: 2,775 charged, 250 posted; invoice tax floor(252.27) = 252:
  a true-up of 2.
- usd_standard: no consumption tax: nothing to invoice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from settlement.service.scenario import bank_account, cloud_event

__all__ = ["cloud_event", "month_of_releases", "parties"]

# 10:00 JST on the days of November 2026 the milestones are released.
NOVEMBER = datetime.fromisoformat("2026-11-02T01:00:00+00:00")
AMOUNTS = {"tiered": 11_025, "flat": 10_100, "usd_standard": 11_000}
EXPECTED: dict[str, dict[str, tuple[int, int, int] | None]] = {
    # plan → worker (charged, posted tax, invoice tax), client's the same
    "tiered": {"worker": (12_125, 1_100, 1_102), "client": None},
    "flat": {"worker": (8_330, 755, 757), "client": (2_775, 250, 252)},
    "usd_standard": {"worker": None, "client": None},
}
MILESTONES = 5


def parties(prefix: str, worker: str, client: str,
            payee_bears: bool = False) -> list[dict[str, Any]]:
    """The worker (bearing transfer fees if `payee_bears`) and the client, whose
    name starts with `=` (a spreadsheet would run it)."""
    at = NOVEMBER - timedelta(days=1)
    return [cloud_event(f"{prefix}-p1", "party.registered", at, {
                "party_id": worker, "kind": "individual", "name": "山田 太郎",
                "name_kana": "ヤマダ タロウ", "kyc_verified": True,
                "bank_account": bank_account("1234567", "ヤマダ タロウ"),
                "transfer_fee_bearer": "payee" if payee_bears else "platform"}),
            cloud_event(f"{prefix}-p2", "party.registered", at, {
                "party_id": client, "kind": "corporation", "name": "=株式会社エーシー",
                "name_kana": "カブシキガイシャエーシー",
                "invoice_registration_number": "T7000012050002"})]


def month_of_releases(plan: str, prefix: str, worker: str, client: str, job: str,
                      amounts: list[int] | None = None,
                      start: datetime = NOVEMBER) -> list[dict[str, Any]]:
    """The marketplace events of one project: each milestone funded, delivered and
    accepted on a day of its own (`amounts`: default five of the plan's amount)."""
    amounts = amounts or [AMOUNTS[plan]] * MILESTONES
    currency = "USD" if plan == "usd_standard" else "JPY"

    def money(value: int) -> dict[str, str]:
        return {"amount": str(value), "currency": currency}

    events = [cloud_event(f"{prefix}-open", "project.contracted", start, {
        "job_id": job, "client_id": client, "worker_id": worker, "fee_plan": plan,
        "milestones": [{"milestone_id": f"m{n}", "amount": money(a)}
                       for n, a in enumerate(amounts)]})]
    for n, amount in enumerate(amounts):
        day = start + timedelta(days=n, minutes=1)
        fee = client_fee(plan, amount)
        events += [
            cloud_event(f"{prefix}-f{n}", "project.milestone_funded", day, {
                "job_id": job, "milestone_id": f"m{n}", "amount": money(amount + fee),
                "payment_ref": f"{prefix}-pay-{n}"}),
            cloud_event(f"{prefix}-d{n}", "project.milestone_delivered",
                        day + timedelta(hours=1), {"job_id": job, "milestone_id": f"m{n}"}),
            cloud_event(f"{prefix}-a{n}", "project.milestone_accepted",
                        day + timedelta(hours=2), {"job_id": job, "milestone_id": f"m{n}"})]
    return events


def client_fee(plan: str, amount: int) -> int:
    """The client fee: flat floor(amount × 0.055) tax-included, usd_standard 5 %."""
    return {"flat": amount * 55 // 1000, "usd_standard": amount * 5 // 100}.get(plan, 0)
