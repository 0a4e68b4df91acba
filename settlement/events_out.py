"""Settlement events on the wire (SPEC §4, contract): a stored event as a CloudEvent.

`type` is `settlement.<event_name>` (e.g. `settlement.milestone_released`), `id`
is derived from the global position, so it is the same however often the event
is published. `data` holds `job_id`, `position`, `version`, `causation_id`, the
event's own fields and its `postings`; amounts are exact decimal strings.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from settlement.ledger.posting import Posting
from settlement.money import Money, format_amount

SOURCE = "settlement"
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic",
                "job_id", "causation_id", "postings"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def event_name(event: object) -> str:
    """`MilestoneReleased` → `milestone_released`."""
    return _CAMEL.sub("_", type(event).__name__).lower()


def wire(value: Any) -> Any:
    """A value as JSON can carry it exactly."""
    if isinstance(value, Money):
        return {"amount": format_amount(value), "currency": value.currency.code}
    if isinstance(value, Posting):
        return {"account": value.account, "side": value.side,
                "amount": format_amount(value.amount), "currency": value.amount.currency.code}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return value


def event_id(position: int) -> str:
    return f"{SOURCE}-{position}"


def to_cloud_event(position: int, event: Any) -> dict[str, Any]:
    """The CloudEvent of the stored escrow `event` at global `position`."""
    fields = {k: wire(v) for k, v in vars(event).items() if k not in _BASE_FIELDS}
    data = {
        "job_id": event.job_id, "position": position, "version": event.originator_version,
        "causation_id": event.causation_id, **fields,
        "postings": [wire(p) for p in event.postings],
    }
    return {
        "specversion": "1.0", "id": event_id(position), "source": SOURCE,
        "type": f"{SOURCE}.{event_name(event)}", "subject": event.job_id,
        "time": event.timestamp.isoformat(), "datacontenttype": "application/json",
        "data": data,
    }
