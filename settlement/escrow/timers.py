"""Timers (SPEC §2, contract): which automatic actions are due at `now`.

`due_timers` is pure; `Escrow.run_timers` (`aggregate`) applies every due action
as an ordinary command with a deterministic causation id, so a repeated timer
pass is a no-op. Disputed items are frozen and never auto-actioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from settlement.core.money import Money, exponent
from settlement.escrow import items as it
from settlement.escrow.base import EscrowBase

AUTO_ACCEPT = "auto_accept"
AUTO_APPROVE = "auto_approve"
DEFAULT_AWARD = "default_award"
REFUND_NO_AWARD = "refund_no_award"
REFUND_MIN_ENTRIES = "refund_min_entries"


@dataclass(frozen=True)
class TimerAction:
    action: str
    item_id: str
    due_at: datetime

    def causation_id(self, job_id: str) -> str:
        return f"timer:{self.action}:{job_id}:{self.item_id}"


class TimerCommands(EscrowBase):
    def due_timers(self, now: datetime) -> list[TimerAction]:
        if self.format == "project":
            wait = timedelta(days=self.inspection_days)
            return self._due_items(now, it.DELIVERED, wait, AUTO_ACCEPT)
        if self.format == "task":
            wait = timedelta(days=self.approval_days)
            return self._due_items(now, it.PENDING, wait, AUTO_APPROVE)
        if self.state != "funded" or self.disputes or now < self.award_deadline:
            return []
        entries = [i for i in self.items.values() if i.kind == it.ENTRY]
        if len(entries) < self.min_entries:
            action = REFUND_MIN_ENTRIES
        elif self.guaranteed and entries:
            action = DEFAULT_AWARD
        else:
            action = REFUND_NO_AWARD
        return [TimerAction(action, "prize", self.award_deadline)]

    def _due_items(self, now: datetime, state: str, wait: timedelta,
                   action: str) -> list[TimerAction]:
        return [
            TimerAction(action, item.item_id, item.delivered_at + wait)
            for item in self.items.values()
            if item.state == state and item.delivered_at is not None
            and item.delivered_at + wait <= now
        ]

    def guaranteed_split(self) -> list[tuple[str, Money]]:
        """The prize split equally among distinct workers who entered, each by their
        earliest entry; indivisible minor units go one each to the earliest entries."""
        first_entry: dict[str, str] = {}
        for item in self.items.values():
            if item.kind == it.ENTRY and item.worker_id not in first_entry:
                first_entry[str(item.worker_id)] = item.item_id
        unit = Decimal(1).scaleb(-exponent(self.currency))
        count = len(first_entry)
        units = int(self.prize.amount / unit)
        share, odd = divmod(units, count)
        return [
            (entry_id, Money((share + (1 if n < odd else 0)) * unit, self.currency))
            for n, entry_id in enumerate(first_entry.values())
        ]
