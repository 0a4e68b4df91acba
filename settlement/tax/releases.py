"""Releases as the settlement events carry them on the wire (SPEC §4): the
`release` (or `releases`, a competition's awards) of a release event's data,
with every amount the event recorded. Pure: read from the audit log's `data`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from settlement.tax.withholding import Release

# The events that release items to workers, by wire name (a dispute's may not).
RELEASE_EVENTS = ("milestone_released", "competition_awarded", "submission_approved",
                  "dispute_resolved")
RELEASE_TYPES = tuple(f"settlement.{name}" for name in RELEASE_EVENTS)


def _amount(money: Mapping[str, Any]) -> Decimal:
    raw = money["amount"]
    if not isinstance(raw, str):  # never a JSON number: it may have been a float
        raise ValueError(f"not a money value: {money!r}")
    return Decimal(raw)


def releases_in(position: int, time: datetime, client_id: str,
                data: Mapping[str, Any]) -> Iterator[Release]:
    """The releases an event's `data` carries (none for a dispute resolved all
    to the client)."""
    found = data.get("releases") or ([data["release"]] if data.get("release") else [])
    for release in found:
        yield Release(position, time, str(data["job_id"]), release["item_id"], client_id,
                      release["worker_id"], release["gross"]["currency"],
                      _amount(release["gross"]), _amount(release["fee"]),
                      _amount(release["fee_tax"]), _amount(release["withholding"]),
                      _amount(release["net"]))
