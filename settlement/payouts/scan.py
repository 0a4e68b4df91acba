"""What is payable, read from the event store (the authority, not a projection).

The scan reads the notification log in order up to a position P and keeps, per
payable or refundable account and currency, the balance on its natural side
(credits − debits) over every event's postings up to P, payout events
included: an amount in transit is no longer payable. It also replays every
party's payout stream up to P, so a payout decided on the scan is stored on
top of exactly the stream version the balance saw; if anything was stored
after that, the store refuses it. `advance` reads on from where it stopped.

It also keeps, per account and currency, the items credited to it and not in a
live payout (a release's net to the worker's payable account, a refund to the
client's refundable account): a payout pays them, a failed payout returns them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from settlement.core.money import Money, format_amount
from settlement.core.movements import Refund, Release
from settlement.escrow.events import Opened, movement_fields, movements_in
from settlement.ledger import accounts
from settlement.ledger.payout_rules import PartyType, party_of_account, payout_account
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.events import (
    PARTY_PAYOUTS_EVENTS,
    PayoutEvent,
    PayoutFailed,
    PayoutInitiated,
)

LOG_PAGE_EVENTS = 1_000


class LedgerScan:
    def __init__(self) -> None:
        self.position = 0  # P: every event up to here is counted, none after it
        self._balances: dict[str, dict[str, Decimal]] = {}  # account → currency → balance
        self.parties: dict[UUID, PartyPayouts] = {}
        self._clients: dict[str, str] = {}  # job id → client id
        # account → currency → (job_id, item_id) → amount not yet in a live payout
        self._open: dict[str, dict[str, dict[tuple[str, str], Decimal]]] = {}

    def advance(self, app: Application[UUID]) -> int:
        """Read every event stored after `position` up to the log's current end;
        returns how many were read."""
        end = app.recorder.max_notification_id() or 0
        read = 0
        while self.position < end:
            page = app.recorder.select_notifications(self.position + 1, LOG_PAGE_EVENTS, stop=end)
            for notification in page:
                self._take(app.mapper.to_domain_event(notification))
                self.position = notification.id
            read += len(page)
            if not page:  # ids may have gaps, never a missing tail: the end was read
                self.position = end
        return read

    def _take(self, event: Any) -> None:
        if isinstance(event, PayoutEvent):
            self._take_payout(event)
        elif isinstance(event, Opened):
            self._clients[event.job_id] = event.client_id
        if hasattr(event, "job_id"):
            self._take_items(event)
        if isinstance(event, PARTY_PAYOUTS_EVENTS):
            party = event.mutate(self.parties.get(event.originator_id))
            assert isinstance(party, PartyPayouts)
            self.parties[event.originator_id] = party
        for posting in getattr(event, "postings", ()):
            if party_of_account(posting.account) is not None:
                currencies = self._balances.setdefault(posting.account, {})
                currency = posting.amount.currency.code
                currencies[currency] = currencies.get(currency, Decimal(0)) - posting.signed()

    def _take_items(self, event: Any) -> None:
        kind: type = type(event)
        for movement in movements_in(getattr(event, f) for f in movement_fields(kind)):
            if isinstance(movement, Release):
                self._credit(accounts.worker_payable(movement.worker_id), event.job_id,
                             movement.item_id, movement.net)
            elif isinstance(movement, Refund) and event.job_id in self._clients:
                self._credit(accounts.client_refundable(self._clients[event.job_id]),
                             event.job_id, movement.item_id, movement.amount)

    def _credit(self, account: str, job_id: str, item_id: str, amount: Money) -> None:
        if amount.amount > 0:
            items = self._open.setdefault(account, {}).setdefault(amount.currency.code, {})
            items[(job_id, item_id)] = items.get((job_id, item_id), Decimal(0)) + amount.amount

    def _take_payout(self, event: PayoutEvent) -> None:
        """A payout takes its items out of the open ones; a failed one puts them back
        (read from its stream before the failure is applied to it)."""
        if isinstance(event, PayoutInitiated):
            currency = self._open.get(event.account, {}).get(event.amount.currency.code, {})
            for item in event.items:
                currency.pop((item["job_id"], item["item_id"]), None)
        elif isinstance(event, PayoutFailed):
            party = self.parties.get(event.originator_id)
            payout = party.payouts.get(event.payout_id) if party is not None else None
            for item in payout.items if payout is not None else ():
                self._credit(event.account, item["job_id"], item["item_id"],
                             Money(Decimal(item["amount"]), event.amount.currency))

    def open_items(self, party_type: PartyType, party_id: str,
                   currency: str) -> list[dict[str, str]]:
        """The items a payout of the party in `currency` would pay, in (job, item) order."""
        items = self._open.get(payout_account(party_type, party_id), {}).get(currency, {})
        return [{"job_id": job_id, "item_id": item_id,
                 "amount": format_amount(Money(amount, currency))}
                for (job_id, item_id), amount in sorted(items.items())]

    def payable_parties(self) -> list[tuple[PartyType, str]]:
        """Every party with a positive balance in some currency, in account order."""
        parties = (party_of_account(account) for account in sorted(self._balances)
                   if any(b > 0 for b in self._balances[account].values()))
        return [party for party in parties if party is not None]

    def payable(self, party_type: PartyType, party_id: str) -> list[Money]:
        """The party's positive balances, one per currency, in currency order."""
        balances = self._balances.get(payout_account(party_type, party_id), {})
        return [Money(b, c) for c, b in sorted(balances.items()) if b > 0]

    def overdrawn(self) -> list[str]:
        """Accounts below zero: more paid out than owed (SPEC §6 forbids it)."""
        return [f"{account} {currency} {balance}"
                for account, currencies in sorted(self._balances.items())
                for currency, balance in sorted(currencies.items()) if balance < 0]
