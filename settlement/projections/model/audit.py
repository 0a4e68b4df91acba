"""Audit log (SPEC §8): every event in global order, as it was published.

The hash chain (`hash = sha256(prev_hash ‖ canonical_json(event))`) is computed
where events are stored, not here: when the published event's data carries
`hash` and `prev_hash`, the row keeps them in their own columns, otherwise they
stay empty. `data` is the rest of the event's data, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from settlement.projections.model.envelope import Event
from settlement.projections.model.fastinit import fast_init

CHAIN_FIELDS = ("hash", "prev_hash")


@fast_init
@dataclass(frozen=True, slots=True)
class AuditRow:
    position: int
    job_id: str | None
    version: int
    type: str
    time: datetime
    causation_id: str
    data: Mapping[str, Any]
    hash: str | None
    prev_hash: str | None


def audit_row(event: Event) -> AuditRow:
    data = event.data
    hash_, prev_hash = data.get("hash"), data.get("prev_hash")
    if "hash" in data or "prev_hash" in data:
        data = dict(data)
        for key in CHAIN_FIELDS:
            data.pop(key, None)
    return AuditRow(event.position, event.job_id, event.version, event.type, event.time,
                    event.causation_id, data, hash_, prev_hash)
