"""Payout events. Their `apply` only assigns facts a command already decided: it
runs again on every replay, so it never validates, reads a clock or config.

Every payout event carries `payout_id`, the party, `causation_id` (the payout
run or the bank's result) and `postings` (SPEC §6). The stream's opening event
moves no money and names no payout. A `PayoutInitiated` lists the `items` it
pays: `{job_id, item_id, amount}` (amount a decimal string), the releases (or
refunds) credited to the account and not yet in a live payout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from eventsourcing.domain import Aggregate

from settlement.core.money import Money
from settlement.ledger.posting import Posting

if TYPE_CHECKING:
    from settlement.payouts.aggregate import PartyPayouts

INITIATED, SETTLED, FAILED = "initiated", "settled", "failed"


@dataclass
class Payout:
    """One payout as the party's stream knows it."""

    payout_id: str
    run_id: str
    account: str
    amount: Money
    as_of_position: int
    initiated_at: datetime
    items: list[dict[str, str]] = field(default_factory=list)
    status: str = INITIATED
    bank_ref: str | None = None
    reason: str | None = None


class PartyPayoutsOpened(Aggregate.Created):
    party_type: str
    party_id: str
    causation_id: str
    postings: list[Posting]


class PayoutEvent(Aggregate.Event):
    payout_id: str
    party_type: str
    party_id: str
    causation_id: str
    postings: list[Posting]


class PayoutInitiated(PayoutEvent):
    account: str
    amount: Money
    as_of_position: int
    run_id: str
    items: list[dict[str, str]]

    def apply(self, aggregate: PartyPayouts) -> None:
        aggregate.payouts[self.payout_id] = Payout(
            self.payout_id, self.run_id, self.account, self.amount, self.as_of_position,
            self.timestamp, list(self.items))
        aggregate.as_of_position = self.as_of_position


class PayoutSettled(PayoutEvent):
    bank_ref: str
    amount: Money

    def apply(self, aggregate: PartyPayouts) -> None:
        payout = aggregate.payouts[self.payout_id]
        payout.status, payout.bank_ref = SETTLED, self.bank_ref


class PayoutFailed(PayoutEvent):
    reason: str
    account: str
    amount: Money

    def apply(self, aggregate: PartyPayouts) -> None:
        payout = aggregate.payouts[self.payout_id]
        payout.status, payout.reason = FAILED, self.reason


PARTY_PAYOUTS_EVENTS = (PartyPayoutsOpened, PayoutEvent)
