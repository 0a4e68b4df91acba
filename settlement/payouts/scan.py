"""What is payable, read from the event store (the authority, not a projection).

The scan reads the notification log in order and keeps, per payable or
refundable account and currency:
- the balance on its natural side (credits − debits) over every posting read,
  payout events included (an amount in transit is no longer payable): what
  the ledger holds, which a payout may never exceed;
- the items credited to it and not in a live payout (a release's net to the
  worker's payable account, a refund to the client's refundable account; a
  failed or returned payout puts its items back), each with its payment
  deadline (`due_by`, SPEC §2) where the item was delivered.

A run frames the scan before reading: items (and the party records) count only
from events stored by the run's snapshot position P, and (a closing) with
`time` before its cutoff; money leaving (a payout) counts whenever it was
stored. So a run pays what its snapshot held, never more than the ledger
holds now, and what arrived later waits for the next run. The scan also
replays every party's payout stream, so a payout decided on it is stored on top
of exactly the stream version it saw; if anything was stored after that, the
store refuses it. `advance` reads on from where it stopped.

Escrow and party events are read straight from their stored JSON (`raw`), the
rest (payout streams, runs) as domain events: a closing reads the whole log,
and building every escrow event cost four fifths of a closing's read (profiled).
A party's record is built only for a party the run decides on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification

from settlement.core.deadlines import payment_due_by
from settlement.core.money import Money, exponent
from settlement.core.movements import Refund, Release
from settlement.escrow.events import (
    Opened,
    movement_fields,
    movements_in,
)
from settlement.ledger import accounts
from settlement.ledger.payout_rules import PartyType, party_of_account, payout_account
from settlement.parties.events import PARTY_EVENTS
from settlement.parties.record import PartyRecord
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.events import (
    PARTY_PAYOUTS_EVENTS,
    PayoutFailed,
    PayoutInitiated,
    PayoutReturned,
)
from settlement.payouts.payable import Payable
from settlement.payouts.raw import DELIVERIES, ESCROW, PARTY, RawEvent, kind_of, parse_raw

LOG_PAGE_EVENTS = 1_000
ItemKey = tuple[str, str]  # (job_id, item_id)
_PAYABLE_PREFIXES = (accounts.worker_payable(""), accounts.client_refundable(""))


@functools.cache
def _quantum(currency: str) -> Decimal:
    """The currency's minor unit, as `format_amount` quantizes to it."""
    return Decimal(1).scaleb(-exponent(currency))


class LedgerScan:
    def __init__(self) -> None:
        self.position = 0  # every event up to here is read, none after it
        self.snapshot_position: int | None = None  # P: None counts every event read
        self.cutoff: datetime | None = None
        self._balances: dict[str, dict[str, Decimal]] = {}  # account → currency → balance
        self.parties: dict[UUID, PartyPayouts] = {}
        # party id → its record as of P (as stored, until a run decides on the party)
        self._records: dict[str, PartyRecord | RawEvent] = {}
        self._clients: dict[str, str] = {}  # job id → client id
        self._delivered: dict[ItemKey, datetime] = {}
        # account → currency → (job_id, item_id) → amount not yet in a live payout
        self._open: dict[str, dict[str, dict[ItemKey, Decimal]]] = {}
        self._taken: set[int] = set()  # positions read ahead of `position` (`take_saved`)

    def frame(self, snapshot_position: int, cutoff: datetime | None) -> None:
        """Count items only up to `snapshot_position` and before `cutoff`."""
        assert self.position == 0, "framed before the first read"
        self.snapshot_position, self.cutoff = snapshot_position, cutoff

    def advance(self, app: Application[UUID], turned: Callable[[], None] = lambda: None) -> int:
        """Read every event stored after `position` up to the log's current end
        (`turned` told after each page); returns how many were read."""
        end = app.recorder.max_notification_id() or 0
        read = 0
        select_log = getattr(app.recorder, "select_log", None)  # SettlementRecorder's
        while self.position < end:
            if select_log is not None:
                last, page = select_log(self.position, end, LOG_PAGE_EVENTS, self._taken)
            else:
                fetched = app.recorder.select_notifications(self.position + 1, LOG_PAGE_EVENTS,
                                                            stop=end)
                page = [n for n in fetched if n.id not in self._taken]
                last = fetched[-1].id if fetched else end
            for notification in page:
                self._take_stored(app.mapper, notification)
            read += len(page)
            # Ids may have gaps, never a missing tail: an empty read is the end.
            self.position = last if last > self.position else end
            turned()
        self._taken = {n for n in self._taken if n > self.position}
        return read

    def take_saved(self, parties: Iterable[PartyPayouts], recordings: Iterable[Any]) -> None:
        """Take the streams a run just stored, with their events (`Application.save`'s
        recordings), without reading them back: `advance` skips their positions."""
        for party in parties:
            self.parties[party.id] = party  # its events are applied to it already
        for recording in recordings:
            self._taken.add(recording.notification.id)
            event = recording.domain_event
            if isinstance(event, PayoutInitiated):
                self._take_payout(event, counts=False)
            for posting in event.postings:
                if posting.account.startswith(_PAYABLE_PREFIXES):
                    self._book(posting.account, posting.amount.currency.code, -posting.signed())

    def _counts(self, timestamp: datetime, position: int) -> bool:
        """Whether an event's credits (items, records) count for this run."""
        return ((self.snapshot_position is None or position <= self.snapshot_position)
                and (self.cutoff is None or timestamp < self.cutoff))

    def _in_snapshot(self, position: int) -> bool:
        return self.snapshot_position is None or position <= self.snapshot_position

    def _take_stored(self, mapper: Mapper[UUID], notification: Notification) -> None:
        kind, event_class = kind_of(notification.topic)
        raw = parse_raw(notification.state) if kind in (ESCROW, PARTY) else None
        if raw is None:
            self._take(mapper.to_domain_event(notification), notification.id)
        elif kind == PARTY:
            if self._in_snapshot(notification.id):
                self._records[raw.state["party_id"]] = raw
        else:
            self._take_escrow(event_class, raw, notification.id)

    def _take_escrow(self, event_class: type, raw: RawEvent, position: int) -> None:
        state, job_id = raw.state, raw.state["job_id"]
        if issubclass(event_class, Opened):
            self._clients[job_id] = state["client_id"]
        field = DELIVERIES.get(event_class)
        if field is not None:  # a milestone delivered again counts from the last delivery
            self._delivered[(job_id, state[field])] = raw.timestamp()
        if self._counts(raw.timestamp(), position):
            for release, refund in raw.movements(movement_fields(event_class)):
                if release is not None:
                    self._credit(accounts.worker_payable(release["worker_id"]), job_id,
                                 release["item_id"], *raw.money(release["net"]))
                elif refund is not None and job_id in self._clients:
                    self._credit(accounts.client_refundable(self._clients[job_id]), job_id,
                                 refund["item_id"], *raw.money(refund["amount"]))
        for account, side, amount, currency in raw.postings(_PAYABLE_PREFIXES):
            self._book(account, currency, amount if side == "credit" else -amount)

    def _book(self, account: str, currency: str, credit: Decimal) -> None:
        currencies = self._balances.setdefault(account, {})
        currencies[currency] = currencies.get(currency, Decimal(0)) + credit

    def _take(self, event: Any, position: int) -> None:
        """A domain event (payout streams, runs; escrow and party events stored in
        a form `raw` does not read)."""
        counts = self._counts(event.timestamp, position)
        if isinstance(event, PayoutInitiated | PayoutFailed | PayoutReturned):
            self._take_payout(event, counts)
        elif isinstance(event, Opened):
            self._clients[event.job_id] = event.client_id
        elif isinstance(event, PARTY_EVENTS):
            if self._in_snapshot(position):
                self._records[event.party_id] = event.record
        if hasattr(event, "job_id"):
            field = DELIVERIES.get(type(event))
            if field is not None:
                self._delivered[(event.job_id, getattr(event, field))] = event.timestamp
            if counts:
                self._take_items(event)
        if isinstance(event, PARTY_PAYOUTS_EVENTS):
            party = event.mutate(self.parties.get(event.originator_id))
            assert isinstance(party, PartyPayouts)
            self.parties[event.originator_id] = party
        for posting in getattr(event, "postings", ()):
            if party_of_account(posting.account) is not None:
                self._book(posting.account, posting.amount.currency.code, -posting.signed())

    def _take_items(self, event: Any) -> None:
        kind: type = type(event)
        for movement in movements_in(getattr(event, f) for f in movement_fields(kind)):
            if isinstance(movement, Release):
                self._credit(accounts.worker_payable(movement.worker_id), event.job_id,
                             movement.item_id, movement.net.amount, movement.net.currency.code)
            elif isinstance(movement, Refund) and event.job_id in self._clients:
                self._credit(accounts.client_refundable(self._clients[event.job_id]),
                             event.job_id, movement.item_id, movement.amount.amount,
                             movement.amount.currency.code)

    def _credit(self, account: str, job_id: str, item_id: str, amount: Decimal,
                currency: str) -> None:
        if amount > 0:
            items = self._open.setdefault(account, {}).setdefault(currency, {})
            items[(job_id, item_id)] = items.get((job_id, item_id), Decimal(0)) + amount

    def _take_payout(self, event: PayoutInitiated | PayoutFailed | PayoutReturned,
                     counts: bool) -> None:
        """A payout takes its items out of the open ones; a failed or returned one
        puts them back (read from its stream before the event is applied to it)."""
        if isinstance(event, PayoutInitiated):
            currency = self._open.get(event.account, {}).get(event.amount.currency.code, {})
            for item in event.items:
                currency.pop((item["job_id"], item["item_id"]), None)
            return
        party = self.parties.get(event.originator_id)
        payout = party.payouts.get(event.payout_id) if party is not None else None
        for item in payout.items if payout is not None and counts else ():
            self._credit(event.account, item["job_id"], item["item_id"],
                         Decimal(item["amount"]), event.amount.currency.code)

    def record_of(self, party_id: str) -> PartyRecord | None:
        """The party's record as of the snapshot (None: not registered by then)."""
        found = self._records.get(party_id)
        if isinstance(found, RawEvent):
            found = self._records[party_id] = found.party_record()
        return found

    def open_items(self, party_type: PartyType, party_id: str,
                   currency: str) -> list[dict[str, str]]:
        """The items a payout of the party in `currency` would pay, in (job, item) order."""
        items = self._open.get(payout_account(party_type, party_id), {}).get(currency, {})
        quantum = _quantum(currency)
        return [{"job_id": job_id, "item_id": item_id, "amount": str(amount.quantize(quantum))}
                for (job_id, item_id), amount in sorted(items.items())]

    def payable_parties(self) -> list[tuple[PartyType, str]]:
        """Every party with a positive balance in some currency, in account order."""
        parties = (party_of_account(account) for account in sorted(self._balances)
                   if any(b > 0 for b in self._balances[account].values()))
        return [party for party in parties if party is not None]

    def payables(self, party_type: PartyType, party_id: str) -> Iterator[Payable]:
        """What the run may pay the party, per currency in currency order: its open
        items, never more than the ledger's balance."""
        account = payout_account(party_type, party_id)
        for currency, balance in sorted(self._balances.get(account, {}).items()):
            items = self._open.get(account, {}).get(currency, {})
            amount = min(balance, sum(items.values(), Decimal(0)))
            if amount > 0:
                delivered = [self._delivered[k] for k in items if k in self._delivered]
                yield Payable(party_type, party_id, Money(amount, currency),
                              self.open_items(party_type, party_id, currency),
                              payment_due_by(min(delivered)) if delivered else None)

    def payable(self, party_type: PartyType, party_id: str) -> list[Money]:
        """The party's payable amounts, one per currency, in currency order."""
        return [p.amount for p in self.payables(party_type, party_id)]

    def overdrawn(self) -> list[str]:
        """Accounts below zero: more paid out than owed (SPEC §6 forbids it)."""
        return [f"{account} {currency} {balance}"
                for account, currencies in sorted(self._balances.items())
                for currency, balance in sorted(currencies.items()) if balance < 0]
