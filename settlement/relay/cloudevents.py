"""Settlement events on the wire (SPEC §4, contract): a stored event as a CloudEvent.

`type` is `settlement.<event_name>` (e.g. `settlement.milestone_released`), `id`
is derived from the global position, so it is the same however often the event
is published. `data` holds `job_id`, `position`, `version`, `causation_id`, the
event's own fields, its `postings` and, where the audit chain is known, the
event's `hash` and `prev_hash` (SPEC §8); amounts are exact decimal strings.

`stored_cloud_event` is the same CloudEvent straight from the stored bytes of an
escrow event, without building the domain event (a tenth of the cost; a unit test
holds it equal to `to_cloud_event` for every kind of event).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from settlement.banking.accounts import BankAccount
from settlement.core.money import Money, exponent, format_amount
from settlement.ledger.posting import Posting

SOURCE = "settlement"
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic",
                "job_id", "payout_id", "causation_id", "postings"}
# What each kind of event is keyed by, in this order (SPEC §4, §14): a payout
# event names its party too, but all of one payout's events share its id.
_KEYS = ("job_id", "payout_id", "party_id", "run_id", "statement_id", "line_id")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
Chain = tuple[str, str]  # (hash, prev_hash) of a stored event
_PLAIN = frozenset({str, int, bool, type(None)})


def event_name(event: object) -> str:
    """`MilestoneReleased` → `milestone_released`; a class may name its wire form
    (`wire_name`: a stream's opening that is a payout too)."""
    return getattr(type(event), "wire_name", None) or _CAMEL.sub("_", type(event).__name__).lower()


def wire(value: Any) -> Any:
    """A value as JSON can carry it exactly."""
    if value.__class__ in _PLAIN:  # most leaves: nothing to convert (a statement's lines)
        return value
    if isinstance(value, Money):
        return {"amount": format_amount(value), "currency": value.currency.code}
    if isinstance(value, BankAccount):
        return value.public()  # only bank files carry account numbers whole (SPEC §10)
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
        return {str(k): v if v.__class__ in _PLAIN else wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if v.__class__ in _PLAIN else wire(v) for v in value]
    return value


def event_id(position: int) -> str:
    return f"{SOURCE}-{position}"


def stream_key(event: Any) -> tuple[str, str]:
    """What an event is keyed by (SPEC §4, §14): `("job_id", …)` for an escrow
    event, `("payout_id", …)` for a payout event, `("party_id", …)` for a party
    event or a hold, `("run_id", …)` for a payout run's."""
    for name in _KEYS:
        if hasattr(event, name):
            return name, getattr(event, name)
    raise ValueError(f"{type(event).__name__} names none of {_KEYS}")


def to_cloud_event(position: int, event: Any, chain: Chain | None = None) -> dict[str, Any]:
    """The CloudEvent of the stored escrow or payout `event` at global `position`;
    `chain`: the event's `(hash, prev_hash)` in the audit chain (SPEC §8), carried
    as `data.hash` and `data.prev_hash`."""
    key_name, key = stream_key(event)
    fields = {k: wire(v) for k, v in vars(event).items() if k not in _BASE_FIELDS}
    data = {
        key_name: key, "position": position, "version": event.originator_version,
        "causation_id": event.causation_id, **fields,
        "postings": [wire(p) for p in event.postings],
    }
    if chain is not None:
        data["hash"], data["prev_hash"] = chain
    return {
        "specversion": "1.0", "id": event_id(position), "source": SOURCE,
        "type": f"{SOURCE}.{event_name(event)}", "subject": key,
        "time": event.timestamp.isoformat(), "datacontenttype": "application/json",
        "data": data,
    }


# Stored events straight to the wire -------------------------------------------------


class NotDirect(Exception):
    """A stored event the direct path does not map: build the domain event instead."""


def stored_cloud_event(position: int, topic: str, version: int, state: bytes,
                       chain: Chain | None = None) -> dict[str, Any] | None:
    """`to_cloud_event` of the stored escrow event (`topic`, `version`, `state` as
    the event store holds them), read from its JSON; None for any event it does
    not map (another aggregate's, an upcast class, a value it does not know)."""
    name = _direct_name(topic)
    if name is None:
        return None
    try:
        state_ = orjson.loads(state)
        fields = {}
        for key, value in state_.items():
            if key not in _BASE_FIELDS:
                cls = type(value)
                fields[key] = value if cls is str or cls is int or value is None else _wired(value)
        job_id, causation_id = state_["job_id"], state_["causation_id"]
        postings = [_posting_of(p) for p in state_["postings"]]
        time = _datetime(state_["timestamp"]["_data_"])
    except (NotDirect, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if "class_version" in state_ or not isinstance(job_id, str):
        return None
    data = {"job_id": job_id, "position": position, "version": version,
            "causation_id": causation_id, **fields, "postings": postings}
    if chain is not None:
        data["hash"], data["prev_hash"] = chain
    return {
        "specversion": "1.0", "id": event_id(position), "source": SOURCE,
        "type": f"{SOURCE}.{name}", "subject": job_id, "time": time,
        "datacontenttype": "application/json", "data": data,
    }


@functools.cache
def _direct_name(topic: str) -> str | None:
    """The event name of an escrow event class of version 1 stored under `topic`."""
    from eventsourcing.utils import resolve_topic

    from settlement.escrow.events import EscrowEvent, Opened

    try:
        cls = resolve_topic(topic)
    except Exception:  # resolved again, and reported, by the mapper
        return None
    if not (isinstance(cls, type) and issubclass(cls, EscrowEvent | Opened)
            and getattr(cls, "class_version", 1) == 1):
        return None
    return _CAMEL.sub("_", cls.__name__).lower()


def _wired(value: Any) -> Any:
    """`wire` of what the transcoder would decode from `value` (decoded JSON)."""
    if type(value) is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            decode = _ENVELOPES.get(value["_type_"])
            if decode is None:
                raise NotDirect(value["_type_"])
            return decode(value["_data_"])
        return {k: _wired(v) for k, v in value.items()}
    if type(value) is list:
        return [_wired(v) for v in value]
    return value


@functools.cache
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def _money(data: dict[str, Any]) -> dict[str, Any]:
    amount, currency = _amount(data)
    return {"amount": amount, "currency": currency}


def _amount(data: dict[str, Any]) -> tuple[str, str]:
    """(wire text of the amount, currency) of a stored money value's data."""
    amount, currency = data["amount"], data["currency"]
    if type(amount) is not str or type(currency) is not str:
        raise NotDirect("money")
    return _quantized(amount, currency), currency


@functools.lru_cache(maxsize=8_192)
def _quantized(amount: str, currency: str) -> str:
    """The wire text of a stored amount (the same few amounts recur: fees, prices)."""
    return str(Decimal(amount).quantize(_quantum(currency)))


def _posting(data: dict[str, Any]) -> dict[str, Any]:
    if len(data) != 3:
        raise NotDirect("posting")
    money = data["amount"]
    if type(money) is not dict or money.get("_type_") != "money" or len(money) != 2:
        raise NotDirect("money")
    amount, currency = _amount(money["_data_"])
    return {"account": data["account"], "side": data["side"], "amount": amount,
            "currency": currency}


def _posting_of(value: Any) -> dict[str, Any]:
    """`_wired` of a stored posting (an event's postings are nothing else)."""
    if type(value) is not dict or value.get("_type_") != "posting" or len(value) != 2:
        raise NotDirect("posting")
    return _posting(value["_data_"])


def _dataclass(type_: type[Any]) -> Any:
    names = tuple(f.name for f in dataclasses.fields(type_))

    def decode(data: dict[str, Any]) -> dict[str, Any]:
        if len(data) != len(names):
            raise NotDirect(type_.__name__)
        out = {}
        for name in names:
            value = data[name]
            cls = type(value)
            out[name] = value if cls is str or cls is int or value is None else _wired(value)
        return out

    return decode


def _datetime(data: str) -> str:
    """The wire text of a stored datetime: the text itself. The transcoder stored
    `isoformat()`, which `fromisoformat` reads back to the same instant and
    `isoformat()` writes again unchanged."""
    if type(data) is not str:
        raise NotDirect("datetime")
    return data


def _envelopes() -> dict[str, Any]:
    from settlement.core.movements import Funding, Refund, Release

    return {
        "money": _money, "posting": _posting, "datetime_iso": _datetime,
        "decimal_str": lambda data: str(Decimal(data)), "uuid_hex": lambda data: str(UUID(data)),
        **{type_.__name__.lower(): _dataclass(type_) for type_ in (Funding, Release, Refund)},
    }


_ENVELOPES = _envelopes()
