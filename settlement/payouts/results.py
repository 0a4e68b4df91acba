"""Payout results from the bank (`payout.settled`, `payout.failed`,
`payout.returned`, SPEC §3): one small handler that finds the payout's stream
and settles, fails or returns the payout.

Streams are read from the event store, never from the repository's cache: a
consumer that owns its escrows caches without fast-forwarding, but payouts are
created by the payout run in another process, and a stale stream would refuse
a real payout as `unknown_payout` for good.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from uuid import UUID

from eventsourcing.application import Repository, project_aggregate

from settlement.core import commands as c
from settlement.core.errors import NotFound, Rejected
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.ids import stream_of_payout

SETTLED, FAILED, RETURNED = "payout.settled", "payout.failed", "payout.returned"
PAYOUT_RESULT_TYPES = frozenset({SETTLED, FAILED, RETURNED})


def load_party(repository: Repository[UUID], stream_id: UUID) -> PartyPayouts | None:
    """The stream as stored now (None if there is none, or it is not a payout stream)."""
    events = repository.event_store.get(stream_id)
    party = project_aggregate(None, events)
    return party if isinstance(party, PartyPayouts) else None


def apply_payout_result(repository: Repository[UUID], command: c.Command,
                        working: MutableMapping[UUID, PartyPayouts] | None = None
                        ) -> PartyPayouts:
    """Apply the result `command`; returns its stream with the new pending event.

    `working` holds the streams a batch has changed but not stored yet, so two
    results for one party in the same batch see each other. Rejections, in
    order: the fields' codes (invalid_identifier, missing_field, invalid_field),
    unknown_payout, then the stream's (payout_already_settled, payout_already_failed,
    payout_already_returned, and for a return payout_not_settled).
    """
    data = command.data
    payout_id = c.ident(data, "payout_id")
    if command.type == SETTLED:
        detail = c.ident(data, "bank_ref")
    elif command.type in (FAILED, RETURNED):
        detail = c.text(data, "reason")
    else:
        raise Rejected(f"{command.type!r} is not a payout result", "unknown_type")
    party = _party(repository, payout_id, working if working is not None else {})
    cause, at = command.command_id, command.time
    if command.type == SETTLED:
        party.settle(payout_id, detail, causation_id=cause, at=at)
    elif command.type == FAILED:
        party.fail(payout_id, detail, causation_id=cause, at=at)
    else:
        party.return_(payout_id, detail, causation_id=cause, at=at)
    return party


def _party(repository: Repository[UUID], payout_id: str,
           working: MutableMapping[UUID, PartyPayouts]) -> PartyPayouts:
    stream_id = stream_of_payout(payout_id)
    if stream_id is not None:
        party = working.get(stream_id) or load_party(repository, stream_id)
        if party is not None and payout_id in party.payouts:
            working[stream_id] = party
            return party
    raise NotFound(f"unknown payout {payout_id}", "unknown_payout")
