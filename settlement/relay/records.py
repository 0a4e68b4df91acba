"""Stored settlement events as Kafka records (SPEC §4). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import Mapper, Notification

from settlement.escrow.events import EscrowEvent, Opened
from settlement.invoices.events import INVOICE_EVENTS
from settlement.parties.events import PARTY_EVENTS
from settlement.payouts.events import PayoutEvent, PayoutHeld
from settlement.payouts.runs import RUN_EVENTS
from settlement.reconcile.events import RECONCILIATION_EVENTS
from settlement.relay.cloudevents import Chain, stored_cloud_event, to_cloud_event
from settlement.tax.remittance import REMITTANCE_EVENTS

# Far above any escrow event (ingestion refuses input records above 256 KiB) and
# below the producer's request limit, so a record that large is a bug, not load.
RECORD_BYTES_MAX = 1024 * 1024


class RecordTooLarge(ValueError):
    """An event encodes to more than RECORD_BYTES_MAX bytes."""


@dataclass(frozen=True)
class OutRecord:
    """One record for `settlement.events`: the key is the job id (payout events:
    the payout id; party events and holds: the party id; a payout run's: the run
    id) in UTF-8."""

    position: int
    key: bytes
    value: bytes


_PUBLISHED = (EscrowEvent, Opened, PayoutEvent, PayoutHeld, *PARTY_EVENTS, *RUN_EVENTS,
              *INVOICE_EVENTS,
              *REMITTANCE_EVENTS, *RECONCILIATION_EVENTS)


def is_settlement_event(event: object) -> bool:
    """Whether `event` is published: escrow, payout, party and payout run events (a
    payout stream's opening, which moves no money and names no payout, is not)."""
    return isinstance(event, _PUBLISHED)


def published(mapper: Mapper[Any], stored: Notification,
              chain: Chain | None = None) -> dict[str, Any] | None:
    """The CloudEvent of the stored event `stored` (with its audit `chain`), None if
    it is not published: straight from the stored JSON where `stored_cloud_event`
    maps it, else through the domain event."""
    direct = stored_cloud_event(stored.id, stored.topic, stored.originator_version,
                                stored.state, chain)
    if direct is not None:
        return direct
    event = mapper.to_domain_event(stored)
    return to_cloud_event(stored.id, event, chain) if is_settlement_event(event) else None


def to_record(position: int, event: object, chain: Chain | None = None) -> OutRecord | None:
    """The record of the stored `event` at global `position`; None if not published."""
    if not is_settlement_event(event):
        return None
    return record_of(to_cloud_event(position, event, chain))


def record_of(cloud_event: dict[str, Any]) -> OutRecord:
    """The record of a published CloudEvent (`to_cloud_event`)."""
    position = cloud_event["data"]["position"]
    value = orjson.dumps(cloud_event)
    if len(value) > RECORD_BYTES_MAX:
        raise RecordTooLarge(
            f"the event at position {position} encodes to {len(value)} bytes, "
            f"above {RECORD_BYTES_MAX}"
        )
    return OutRecord(position, cloud_event["subject"].encode("utf-8"), value)
