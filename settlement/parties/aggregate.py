"""A party (SPEC §10): one stream per marketplace `party_id`, a worker or client
or both. Commands check everything first (see `record` for the order and the
codes) and emit one event carrying the whole record after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from settlement.core.commands import identifier
from settlement.core.errors import Rejected
from settlement.parties import events as ev
from settlement.parties import record as rec
from settlement.parties.ids import party_stream_id

BANK_ACCOUNT_RETURNED = "bank_account_returned"
# Bounds a stream's replay: far above the updates a party sees in its life.
PARTY_EVENTS_MAX = 10_000


class Party(Aggregate):
    def __init__(self, party_id: str, record: rec.PartyRecord) -> None:
        self.party_id = party_id
        self.record = record

    @classmethod
    def register(cls, party_id: str, data: Mapping[str, Any], *, causation_id: str,
                 at: datetime) -> Party:
        """A new party; `invalid_identifier`, then the record's codes."""
        identifier(party_id, "party_id")
        return cls._create(ev.PartyRegistered, id=party_stream_id(party_id), timestamp=at,
                           party_id=party_id, record=rec.registered(data),
                           causation_id=causation_id, postings=[])

    def update(self, data: Mapping[str, Any], *, causation_id: str, at: datetime) -> None:
        """The fields `data` carries replace the party's; the record's codes, then
        `too_many_party_events`."""
        record, changed = rec.updated(self.record, data)
        self._check_room()
        self.trigger_event(ev.PartyUpdated, timestamp=at, party_id=self.party_id,
                           record=record, changed=changed, causation_id=causation_id,
                           postings=[])

    def transfer_returned(self, payout_id: str, *, causation_id: str, at: datetime) -> None:
        """Hold the party until a new bank account (`bank_account_returned`)."""
        self._check_room()
        record = dataclasses.replace(self.record, hold=BANK_ACCOUNT_RETURNED,
                                     returned_payout_id=payout_id)
        self.trigger_event(ev.TransferReturned, timestamp=at, party_id=self.party_id,
                           record=record, payout_id=payout_id, causation_id=causation_id,
                           postings=[])

    def _check_room(self) -> None:
        if self.version >= PARTY_EVENTS_MAX:
            raise Rejected(f"party {self.party_id} has {PARTY_EVENTS_MAX} events",
                           "too_many_party_events")
