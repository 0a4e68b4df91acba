"""What is payable, read from the event store (the authority, not a projection).

The scan reads the notification log in order up to a position P and keeps, per
payable or refundable account and currency, the balance on its natural side
(credits − debits) over every event's postings up to P, payout events
included: an amount in transit is no longer payable. It also replays every
party's payout stream up to P, so a payout decided on the scan is stored on
top of exactly the stream version the balance saw; if anything was stored
after that, the store refuses it. `advance` reads on from where it stopped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from settlement.ledger.payout_rules import PartyType, party_of_account, payout_account
from settlement.money import Money
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.events import PARTY_PAYOUTS_EVENTS

LOG_PAGE_EVENTS = 1_000


class LedgerScan:
    def __init__(self) -> None:
        self.position = 0  # P: every event up to here is counted, none after it
        self._balances: dict[str, dict[str, Decimal]] = {}  # account → currency → balance
        self.parties: dict[UUID, PartyPayouts] = {}

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
        if isinstance(event, PARTY_PAYOUTS_EVENTS):
            party = event.mutate(self.parties.get(event.originator_id))
            assert isinstance(party, PartyPayouts)
            self.parties[event.originator_id] = party
        for posting in getattr(event, "postings", ()):
            if party_of_account(posting.account) is not None:
                currencies = self._balances.setdefault(posting.account, {})
                currency = posting.amount.currency.code
                currencies[currency] = currencies.get(currency, Decimal(0)) - posting.signed()

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
