"""Transcodings for the event store: `Money` and the frozen value objects events carry.

Amounts are stored as exact decimal strings (never `str(Money)`, which rounds
for display).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from settlement.ledger.posting import Posting
from settlement.money import Money
from settlement.movements import Funding, Refund, Release


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, str]:
        return {"amount": str(obj.amount), "currency": obj.currency.code}

    def decode(self, data: dict[str, str]) -> Money:
        return Money(Decimal(data["amount"]), data["currency"])


class DataclassAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields (nested values transcoded in turn)."""

    def __init__(self, type_: type[Any]) -> None:
        self.type = type_
        self.name = type_.__name__.lower()
        self._fields = [f.name for f in dataclasses.fields(type_)]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._fields}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


VALUE_TYPES = (Posting, Funding, Release, Refund)


def register(transcoder: JSONTranscoder) -> None:
    transcoder.register(MoneyAsDict())
    for type_ in VALUE_TYPES:
        transcoder.register(DataclassAsDict(type_))
