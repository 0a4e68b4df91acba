"""Money and the value objects events carry, through the event store's JSON transcoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from settlement.ledger.posting import Posting
from settlement.money import Money
from settlement.movements import Funding, Refund, Release
from settlement.store.transcodings import register


@pytest.fixture
def transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (DecimalAsStr(), DatetimeAsISO(), UUIDAsHex()):
        transcoder.register(transcoding)
    register(transcoder)
    return transcoder


def jpy(amount: int) -> Money:
    return Money(Decimal(amount), "JPY")


VALUES = [
    jpy(11_000),
    Money(Decimal("0.10"), "USD"),
    Money(Decimal("1234567.89"), "USD"),
    Money(Decimal("1234567.125"), "KWD"),
    Money(Decimal("1000000000000"), "JPY"),
    Posting("liabilities:escrow:job-42", "debit", Money(Decimal("0.05"), "USD")),
    Funding("m1", jpy(10_000), jpy(500), jpy(50), "pay-9"),
    Release("m1", "w-7", jpy(110_000), jpy(21_000), jpy(2_100), jpy(10_210), jpy(76_690)),
    Refund("m1", Money(Decimal("250.50"), "USD")),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_value_round_trips(transcoder: JSONTranscoder, value: object) -> None:
    decoded = transcoder.decode(transcoder.encode(value))
    assert type(decoded) is type(value)
    assert decoded == value


@pytest.mark.parametrize(
    "amount",
    [Money(Decimal("0.10"), "USD"), Money(Decimal("1234567.89"), "USD"),
     Money(Decimal("1234567.125"), "KWD"), Money(Decimal("0.001"), "KWD")],
)
def test_money_is_stored_as_an_exact_decimal_string(
    transcoder: JSONTranscoder, amount: Money
) -> None:
    stored = json.loads(transcoder.encode(amount))
    assert stored["_data_"] == {"amount": str(amount.amount), "currency": amount.currency.code}
    decoded = transcoder.decode(transcoder.encode(amount))
    assert decoded.amount == amount.amount
    assert decoded.amount.as_tuple() == amount.amount.as_tuple()  # "0.10" stays "0.10"
    assert decoded.currency.code == amount.currency.code


def test_nested_values_round_trip_inside_event_state(transcoder: JSONTranscoder) -> None:
    # The shape of an event's state: movements and postings next to the
    # library's own Decimal, datetime and UUID values.
    release = Release("m1", "w-7", jpy(11_000), jpy(2_200), jpy(220), jpy(0), jpy(8_580))
    state = {
        "originator_id": UUID("6f1f2a7e-8c55-5b4a-9f0e-2f4d1c9b7a10"),
        "timestamp": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        "rate": Decimal("0.165"),
        "movements": [release, Refund("m2", jpy(4_000))],
        "postings": [Posting("liabilities:escrow:job-42", "debit", jpy(11_000)),
                     Posting("liabilities:worker_payable:w-7", "credit", jpy(8_580))],
    }
    decoded = transcoder.decode(transcoder.encode(state))
    assert decoded == state
    assert isinstance(decoded["movements"][0].gross, Money)
    assert isinstance(decoded["postings"][1].amount, Money)
