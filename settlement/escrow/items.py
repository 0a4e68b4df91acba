"""Items of an escrow: milestones (project), entries (competition), submissions (task)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from settlement.core.errors import Rejected
from settlement.core.money import Money

# Item states. A released item is owed to its worker; payouts are a later concern.
CONTRACTED = "contracted"
FUNDED = "funded"
DELIVERED = "delivered"
RELEASED = "released"
CANCELLED = "cancelled"
DISPUTED = "disputed"
RESOLVED = "resolved"
ENTERED = "entered"
PENDING = "pending"
REJECTED = "rejected"

MILESTONE = "milestone"
ENTRY = "entry"
SUBMISSION = "submission"


@dataclass
class Item:
    item_id: str
    kind: str
    amount: Money
    tax: Money
    state: str
    worker_id: str | None = None
    # When the worker delivered (milestone delivered, entry submitted, submission
    # received): the 60-day payment deadline and the timers count from here.
    delivered_at: datetime | None = None

    def require_state(self, *states: str, code: str = "invalid_state") -> None:
        if self.state == DISPUTED and DISPUTED not in states:
            raise Rejected(f"{self.kind} {self.item_id} is disputed", "item_disputed")
        if self.state not in states:
            raise Rejected(
                f"{self.kind} {self.item_id} is {self.state}, expected {' or '.join(states)}", code
            )
