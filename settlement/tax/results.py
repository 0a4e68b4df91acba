"""A remittance's result from the bank, confirmed like a payout (SPEC §6, §12): a
`payout.settled` (or `payout.failed`) on `payments.payout-results` whose
`payout_id` is a remittance id (`wr-…`) settles (or fails) that remittance.
A remittance is never in a Zengin file and never comes back as `payout.returned`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from uuid import UUID

from eventsourcing.application import Repository, project_aggregate

from settlement.core import commands as c
from settlement.core.errors import NotFound, Rejected
from settlement.tax.remittance import REMITTANCE_PREFIX, ClientWithholding, stream_of_remittance

SETTLED, FAILED = "payout.settled", "payout.failed"


def is_remittance_result(command: c.Command) -> bool:
    payout_id = command.data.get("payout_id")
    return isinstance(payout_id, str) and payout_id.startswith(REMITTANCE_PREFIX)


def load_remittances(repository: Repository[UUID], stream_id: UUID) -> ClientWithholding | None:
    """The client's remittance stream as stored now (None if there is none)."""
    found = project_aggregate(None, repository.event_store.get(stream_id))
    return found if isinstance(found, ClientWithholding) else None


def apply_remittance_result(repository: Repository[UUID], command: c.Command,
                            working: MutableMapping[UUID, ClientWithholding]
                            ) -> ClientWithholding:
    """Settle or fail the remittance `command` names; returns its stream with the
    new pending event (`working`: the streams the batch changed, not yet stored).
    Rejections, in order: the fields' codes, remittance_not_returnable,
    unknown_remittance, remittance_already_confirmed, remittance_already_failed."""
    data = command.data
    remittance_id = c.ident(data, "payout_id")
    detail = c.ident(data, "bank_ref") if command.type == SETTLED else c.text(data, "reason")
    if command.type not in (SETTLED, FAILED):
        raise Rejected(f"a remittance is not {command.type}", "remittance_not_returnable")
    stream_id = stream_of_remittance(remittance_id)
    stream = None if stream_id is None else (
        working.get(stream_id) or load_remittances(repository, stream_id))
    if stream is None or stream_id is None:
        raise NotFound(f"unknown remittance {remittance_id}", "unknown_remittance")
    cause, at = command.command_id, command.time
    if command.type == SETTLED:
        stream.confirm(remittance_id, detail, causation_id=cause, at=at)
    else:
        stream.fail(remittance_id, detail, causation_id=cause, at=at)
    working[stream_id] = stream
    return stream
