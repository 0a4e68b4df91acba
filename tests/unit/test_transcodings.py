"""Money and the value objects events carry, through the event store's JSON transcoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, get_origin, get_type_hints
from uuid import UUID

import moneyed
import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from settlement.application import handlers
from settlement.core.commands import Command
from settlement.core.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.core.money import Money
from settlement.core.movements import Funding, Refund, Release
from settlement.escrow import Escrow, events
from settlement.ledger.posting import Posting
from settlement.service.scenario import marketplace_day
from settlement.store.transcodings import OrjsonTranscoder, register


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


# The application's transcoder: orjson writing, the stdlib's bytes -------------------


def orjson_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    for transcoding in (DecimalAsStr(), DatetimeAsISO(), UUIDAsHex()):
        transcoder.register(transcoding)
    register(transcoder)
    return transcoder


def scenario_event_states() -> list[dict[str, Any]]:
    """The state of every event of the sample marketplace day, as the mapper stores it."""
    plans = load_fee_plans(DEFAULT_FEE_PLANS)
    escrows: dict[str, Escrow] = {}
    states = []
    for e in marketplace_day(datetime(2026, 11, 26, 9, tzinfo=UTC)):
        cmd = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
        escrow = handlers.apply(escrows.get(cmd.job_id), cmd, plans)
        escrows[cmd.job_id] = escrow
        for event in escrow.collect_events():
            state = dict(vars(event))
            del state["originator_id"], state["originator_version"]
            states.append(state)
    return states


def test_orjson_transcoder_writes_the_bytes_of_the_json_transcoder(
    transcoder: JSONTranscoder,
) -> None:
    fast = orjson_transcoder()
    states = scenario_event_states()
    assert len(states) > 20
    for state in states:
        assert fast.encode(state) == transcoder.encode(state)
        assert fast.decode(fast.encode(state)) == state


# Bytes written by the code before amounts inside values were enveloped by the value's
# own transcoding (no call back per amount): stored events must not change. The
# second value holds the library's `Money` (a caller may pass one), not ours.
STORED_VALUES = [
    (Posting("liabilities:escrow:job-42", "debit", Money(Decimal("0.05"), "USD")),
     b'{"_type_":"posting","_data_":{"account":"liabilities:escrow:job-42","side":"debit",'
     b'"amount":{"_type_":"money","_data_":{"amount":"0.05","currency":"USD"}}}}'),
    (Posting("a", "credit", moneyed.Money(Decimal("3"), "JPY")),  # type: ignore[arg-type]
     b'{"_type_":"posting","_data_":{"account":"a","side":"credit",'
     b'"amount":{"_type_":"money","_data_":{"amount":"3","currency":"JPY"}}}}'),
    (Release("m1", "w-7", jpy(110_000), jpy(21_000), jpy(2_100), jpy(10_210), jpy(76_690)),
     b'{"_type_":"release","_data_":{"item_id":"m1","worker_id":"w-7",'
     b'"gross":{"_type_":"money","_data_":{"amount":"110000","currency":"JPY"}},'
     b'"fee":{"_type_":"money","_data_":{"amount":"21000","currency":"JPY"}},'
     b'"fee_tax":{"_type_":"money","_data_":{"amount":"2100","currency":"JPY"}},'
     b'"withholding":{"_type_":"money","_data_":{"amount":"10210","currency":"JPY"}},'
     b'"net":{"_type_":"money","_data_":{"amount":"76690","currency":"JPY"}}}}'),
]


@pytest.mark.parametrize(("value", "stored"), STORED_VALUES,
                         ids=["posting", "posting_library_money", "release"])
def test_values_holding_amounts_are_stored_as_before(
    transcoder: JSONTranscoder, value: object, stored: bytes
) -> None:
    assert orjson_transcoder().encode(value) == stored
    assert transcoder.encode(value) == stored


@pytest.mark.parametrize("value", [
    {"big": 2**70},  # beyond orjson's 64-bit integers
    {"rate": Decimal("0.165"), "at": datetime(2026, 11, 26, tzinfo=UTC)},
    {1: "a non-string key"},
], ids=["big_int", "decimal_datetime", "int_key"])
def test_orjson_transcoder_agrees_where_orjson_alone_would_not(
    transcoder: JSONTranscoder, value: dict[Any, Any]
) -> None:
    assert orjson_transcoder().encode(value) == transcoder.encode(value)


def test_orjson_transcoder_refuses_unregistered_types() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        orjson_transcoder().encode({"value": object()})


def event_classes() -> set[type]:
    found: set[type] = set()
    todo: list[type] = [events.EscrowEvent, events.Opened]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


EVENT_CLASSES = sorted(event_classes(), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=[c.__name__ for c in EVENT_CLASSES])
def test_events_carry_no_uuid_values(cls: type) -> None:
    # orjson would store a UUID as a plain string that reads back as `str`
    # (see OrjsonTranscoder); the originator id has its own column.
    own = {name: hint for name, hint in get_type_hints(cls).items()
           if name != "originator_id" and get_origin(hint) is not ClassVar}
    assert not [name for name, hint in own.items() if "UUID" in repr(hint)]


def test_library_money_is_stored_alike_and_reads_back_as_ours(transcoder: JSONTranscoder) -> None:
    # Callers may hand in py-moneyed's own Money (tests do): stored the same way.
    theirs = moneyed.Money(Decimal("0.10"), "USD")
    assert transcoder.encode(theirs) == transcoder.encode(Money(Decimal("0.10"), "USD"))
    decoded = transcoder.decode(orjson_transcoder().encode({"amount": theirs}))["amount"]
    assert type(decoded) is Money and decoded == theirs
