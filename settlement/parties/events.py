"""Party events. Each carries the party's whole record after it (`record`), so
`apply` only assigns; it runs again on every replay and never validates, reads
a clock or configuration. Party events move no money: `postings` is empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.domain import Aggregate

from settlement.ledger.posting import Posting
from settlement.parties.record import PartyRecord

if TYPE_CHECKING:
    from settlement.parties.aggregate import Party


class PartyRegistered(Aggregate.Created):
    party_id: str
    record: PartyRecord
    causation_id: str
    postings: list[Posting]


class PartyEvent(Aggregate.Event):
    party_id: str
    record: PartyRecord
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: Party) -> None:
        aggregate.record = self.record


class PartyUpdated(PartyEvent):
    changed: list[str]  # the fields the marketplace's update carried


class TransferReturned(PartyEvent):
    """A transfer to the party came back (SPEC §11): held until a new bank account."""

    payout_id: str


PARTY_EVENTS = (PartyRegistered, PartyEvent)
