"""The party command path (SPEC §10): `party.registered` opens a party's stream,
`party.updated` changes it. Like payout streams, parties are read as stored,
never from the repository's cache: payout results of other partitions (a
returned transfer) change them too.

Rejections, in order: the party id's code (`invalid_identifier`),
`party_exists` / `unknown_party`, then the record's (`settlement.parties.record`).
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from itertools import groupby
from uuid import UUID

from eventsourcing.application import Application, project_aggregate

from settlement.core import commands as c
from settlement.core.errors import NotFound, Rejected
from settlement.parties import PARTY_REGISTERED, PARTY_UPDATED, Party, party_stream_id
from settlement.store.recorder import SettlementRecorder

Parties = MutableMapping[str, Party | None]  # party id → its stream (None: none yet)


def load_parties(app: Application[UUID], party_ids: Iterable[str]) -> dict[str, Party | None]:
    """The parties of `party_ids` as stored now, read with one query."""
    ids = {party_stream_id(p): p for p in party_ids}
    found: dict[str, Party | None] = dict.fromkeys(ids.values())
    recorder = app.recorder
    if not ids:
        return found
    if isinstance(recorder, SettlementRecorder):
        stored = recorder.select_events_of(list(ids))
    else:  # an in-memory store (unit tests): one read per party
        stored = [e for i in ids for e in recorder.select_events(i)]
    for stream_id, events in groupby(stored, key=lambda e: e.originator_id):
        party = project_aggregate(None, (app.mapper.to_domain_event(e) for e in events))
        if isinstance(party, Party):
            found[ids[stream_id]] = party
    return found


def party_ids_of(commands: Iterable[c.Command]) -> set[str]:
    """The valid party ids that party commands name."""
    found = set()
    for command in commands:
        party_id = command.data.get("party_id")
        if isinstance(party_id, str) and c.IDENTIFIER.fullmatch(party_id):
            found.add(party_id)
    return found


def apply_party_command(app: Application[UUID], command: c.Command,
                        working: Parties) -> Party:
    """Apply `command`; returns the party with its new pending event."""
    party_id = c.ident(command.data, "party_id")
    if party_id not in working:
        working.update(load_parties(app, [party_id]))
    party = working[party_id]
    if command.type == PARTY_REGISTERED:
        if party is not None:
            raise Rejected(f"party {party_id} is registered", "party_exists")
        party = Party.register(party_id, command.data, causation_id=command.command_id,
                               at=command.time)
    elif command.type == PARTY_UPDATED:
        if party is None:
            raise NotFound(f"unknown party {party_id}", "unknown_party")
        party.update(command.data, causation_id=command.command_id, at=command.time)
    else:
        raise Rejected(f"{command.type!r} is not a party event", "unknown_type")
    working[party_id] = party
    return party

