"""A settlement event as the projections read it: the CloudEvent of SPEC §4,
checked once and typed, so each projection reads plain attributes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from settlement.projections.model.errors import MalformedEvent
from settlement.projections.model.fastinit import fast_init

TYPE_PREFIX = "settlement."
# A time as `datetime.isoformat()` writes it (what the relay publishes): such a text
# is its time's ISO text as it stands, without writing it again (`isoformat` of an
# aware time costs ~1.8 µs, several times an event before). Not `-00:00` (written
# `+00:00`) nor six zero microseconds (written without them): `test_envelope_stamp` holds
# the two equal over generated times.
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?!000000)[0-9]{6})?"
                  r"(?:\+[0-9]{2}:[0-9]{2}|-(?!00:00)[0-9]{2}:[0-9]{2})")


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
    stamp: str = ""  # `time.isoformat()`: set by `parse`


def parse(cloud_event: Mapping[str, Any]) -> Event:
    """The `Event` of a decoded CloudEvent; `MalformedEvent` if a field is missing."""
    try:
        data = cloud_event["data"]
        type_ = cloud_event["type"]
        stamp = cloud_event["time"]
        time = datetime.fromisoformat(stamp)
        if not _ISO.fullmatch(stamp):
            stamp = time.isoformat()
        event = Event(data["position"], data.get("job_id"), data["version"], type_, time,
                      data["causation_id"], data, type_[len(TYPE_PREFIX):], stamp)
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
            value = AMOUNTS.get(raw)
            return _new_amount(raw) if value is None else value
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise MalformedEvent(f"not a money value: {money!r}") from exc
    raise MalformedEvent(f"not a money value: {money!r}")


# Each wire amount's text as a Decimal, made once: the same few amounts recur
# (prices, fees, their tax), and `Decimal(text)` was a tenth of `entries`. The
# constructor is exact whatever the context, so the value never depends on when
# it was made. Emptied past `AMOUNTS_MAX` texts, so it stays small.
AMOUNTS: dict[str, Decimal] = {}
AMOUNTS_MAX = 8_192


def _new_amount(raw: str) -> Decimal:
    if len(AMOUNTS) >= AMOUNTS_MAX:
        AMOUNTS.clear()
    value = AMOUNTS[raw] = Decimal(raw)
    return value
