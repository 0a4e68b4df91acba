"""What a run may pay one party in one currency, as its scan saw it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from settlement.core.money import Money
from settlement.ledger.payout_rules import PartyType


@dataclass(frozen=True)
class Payable:
    party_type: PartyType
    party_id: str
    amount: Money
    items: list[dict[str, str]]  # {job_id, item_id, amount}, in (job, item) order
    due_by: datetime | None  # the earliest payment deadline among the items (SPEC §2)
