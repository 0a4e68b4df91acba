"""Payout events. Their `apply` only assigns facts a command already decided: it
runs again on every replay, so it never validates, reads a clock or config.

Every payout event carries `payout_id`, the party, `causation_id` (the payout
run or the bank's result) and `postings` (SPEC §6). The stream's opening event
moves no money and names no payout. A `PayoutInitiated` lists the `items` it
pays: `{job_id, item_id, amount}` (amount a decimal string), the releases (or
refunds) credited to the account and not yet in a live payout, and (Part II)
the bank account it is sent to, as the run's snapshot saw it, and the
payee-borne transfer fee with its tax (zero unless the party bears fees).
Payouts stored before Part II carry neither: they read as None.

`PayoutHeld` records that a run did not pay a party in a currency, and why
(SPEC §11 holds, or `below_minimum`: carried over); it names no payout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from eventsourcing.domain import Aggregate

from settlement.banking.accounts import BankAccount
from settlement.core.money import Money
from settlement.ledger.posting import Posting

if TYPE_CHECKING:
    from settlement.payouts.aggregate import PartyPayouts

INITIATED, SETTLED, FAILED, RETURNED = "initiated", "settled", "failed", "returned"


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
    bank_account: BankAccount | None = None
    transfer_fee: Money | None = None
    transfer_fee_tax: Money | None = None

    @property
    def sent(self) -> Money:
        """What the bank transfers: the amount less a payee-borne fee."""
        return self.amount if self.transfer_fee is None else self.amount - self.transfer_fee


@dataclass(frozen=True)
class Hold:
    """A party a run did not pay in a currency, and why."""

    run_id: str
    amount: Money
    reason: str
    due_by: datetime | None


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
    bank_account: BankAccount | None = None
    transfer_fee: Money | None = None
    transfer_fee_tax: Money | None = None

    def apply(self, aggregate: PartyPayouts) -> None:
        aggregate.payouts[self.payout_id] = Payout(
            self.payout_id, self.run_id, self.account, self.amount, self.as_of_position,
            self.timestamp, list(self.items), bank_account=self.bank_account,
            transfer_fee=self.transfer_fee, transfer_fee_tax=self.transfer_fee_tax)
        aggregate.as_of_position = self.as_of_position


class PayoutStreamOpened(PayoutInitiated, Aggregate.Created):
    """A party's payout stream opened with its first payout: one event, not an
    opening and a payout (a closing opens most of the streams it pays: a quarter
    of its time, measured). It is a `PayoutInitiated` in every respect, and
    published as one (`settlement.payout_initiated`)."""

    wire_name = "payout_initiated"


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


class PayoutReturned(PayoutEvent):
    """The bank sent a settled transfer back (組戻し, 振込不能): `amount` is what
    was sent; it is payable again, and the items too."""

    reason: str
    account: str
    amount: Money

    def apply(self, aggregate: PartyPayouts) -> None:
        payout = aggregate.payouts[self.payout_id]
        payout.status, payout.reason = RETURNED, self.reason


class PayoutHeld(Aggregate.Event):
    """A run left the party's payable in `currency` where it is (`amount`)."""

    party_type: str
    party_id: str
    run_id: str
    amount: Money
    reason: str
    due_by: datetime | None  # the earliest of its items' payment deadlines
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: PartyPayouts) -> None:
        aggregate.holds[(self.run_id, self.amount.currency.code)] = Hold(
            self.run_id, self.amount, self.reason, self.due_by)


PARTY_PAYOUTS_EVENTS = (PartyPayoutsOpened, PayoutEvent, PayoutHeld)
