"""Parties (SPEC §10): the workers and clients the marketplace registers, each an
event-sourced aggregate with its history. Pure: no I/O, no clock.

`record` (what a party is, checked field by field), `events` (which only
assign), `aggregate` (the `Party` and its commands), `ids` (deterministic
stream ids), `holds` (why a payout to a party must wait).
"""

from settlement.parties.aggregate import Party
from settlement.parties.ids import party_stream_id
from settlement.parties.record import PartyRecord

PARTY_REGISTERED, PARTY_UPDATED = "party.registered", "party.updated"
PARTY_TYPES = frozenset({PARTY_REGISTERED, PARTY_UPDATED})

__all__ = ["PARTY_REGISTERED", "PARTY_TYPES", "PARTY_UPDATED", "Party", "PartyRecord",
           "party_stream_id"]
