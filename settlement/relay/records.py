"""Stored settlement events as Kafka records (SPEC §4). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from settlement.aggregates.events import EscrowEvent, Opened
from settlement.events_out import to_cloud_event

# Far above any escrow event (ingestion refuses input records above 256 KiB) and
# below the producer's request limit, so a record that large is a bug, not load.
RECORD_BYTES_MAX = 1024 * 1024


class RecordTooLarge(ValueError):
    """An event encodes to more than RECORD_BYTES_MAX bytes."""


@dataclass(frozen=True)
class OutRecord:
    """One record for `settlement.events`: the key is the job id in UTF-8."""

    position: int
    key: bytes
    value: bytes


def is_settlement_event(event: object) -> bool:
    """Whether `event` is published: the escrow events (other aggregates' are not)."""
    return isinstance(event, EscrowEvent | Opened)


def to_record(position: int, event: object) -> OutRecord | None:
    """The record of the stored `event` at global `position`; None if not published."""
    if not is_settlement_event(event):
        return None
    cloud_event = to_cloud_event(position, event)
    value = orjson.dumps(cloud_event)
    if len(value) > RECORD_BYTES_MAX:
        raise RecordTooLarge(
            f"the event at position {position} encodes to {len(value)} bytes, "
            f"above {RECORD_BYTES_MAX}"
        )
    return OutRecord(position, cloud_event["data"]["job_id"].encode("utf-8"), value)
