"""A settlement event as the projections read it: the CloudEvent of SPEC §4,
checked once and typed, so each projection reads plain attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from settlement.projections.model.errors import MalformedEvent
from settlement.projections.model.fastinit import fast_init

TYPE_PREFIX = "settlement."


@fast_init
@dataclass(frozen=True, slots=True)
class Event:
    position: int
    job_id: str | None  # None for events of other streams (payouts: `data.payout_id`)
    version: int
    type: str  # the CloudEvent type, e.g. "settlement.milestone_funded"
    time: datetime
    causation_id: str
    data: Mapping[str, Any]
    name: str = ""  # the type without its prefix ("milestone_funded"): set by `parse`


def parse(cloud_event: Mapping[str, Any]) -> Event:
    """The `Event` of a decoded CloudEvent; `MalformedEvent` if a field is missing."""
    try:
        data = cloud_event["data"]
        type_ = cloud_event["type"]
        event = Event(
            position=data["position"], job_id=data.get("job_id"), version=data["version"],
            type=type_, time=datetime.fromisoformat(cloud_event["time"]),
            causation_id=data["causation_id"], data=data, name=type_[len(TYPE_PREFIX):],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"not a settlement event: {exc!r}") from exc
    if not (isinstance(event.position, int) and isinstance(event.version, int)
            and event.position > 0 and event.version > 0 and type_.startswith(TYPE_PREFIX)
            and isinstance(event.job_id, str | None) and event.time.tzinfo is not None):
        raise MalformedEvent(f"event {cloud_event.get('id')!r} has an invalid envelope")
    return event


def amount(money: Mapping[str, Any]) -> Decimal:
    """The exact amount of a wire money value `{"amount": "<decimal>", "currency"}`."""
    try:
        raw = money["amount"]
        if isinstance(raw, str):  # never a JSON number: it may have been a binary float
            return Decimal(raw)
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise MalformedEvent(f"not a money value: {money!r}") from exc
    raise MalformedEvent(f"not a money value: {money!r}")
