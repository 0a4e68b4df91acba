"""Commands: a marketplace event (CloudEvent `id`, `type`, `time`, `data`) to apply.

The command id is the idempotency key; the digest covers everything the command
means, so the same id with other content is told apart (`conflict`). Field
parsers turn wire values into typed ones with stable codes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from settlement.core.errors import InvalidInput
from settlement.core.money import Money, parse_money, zero
from settlement.core.times import NotAnInstant, parse_instant

IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TEXT_CHARS_MAX = 2_000
TERMS_BYTES_MAX = 16 * 1024


@dataclass(frozen=True)
class Command:
    command_id: str
    type: str
    time: datetime
    data: Mapping[str, Any]
    digest: str = field(default="")

    @classmethod
    def create(cls, command_id: str, type_: str, time: datetime,
               data: Mapping[str, Any]) -> Command:
        identifier(command_id, "id")
        if time.tzinfo is None:
            raise InvalidInput("time must carry a timezone", "time_format")
        return cls(command_id, type_, time, data, digest_of(type_, time, data))

    @functools.cached_property
    def job_id(self) -> str:
        """Checked once per command (read several times while applying it); an
        invalid one raises every time."""
        return identifier(self.data.get("job_id"), "job_id")


# Datetimes and dataclasses go to `default=str` as in the stdlib encoder.
_CANONICAL = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
              | orjson.OPT_PASSTHROUGH_DATACLASS)


def digest_of(type_: str, time: datetime, data: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of what the command means: sorted keys, no
    whitespace, UTF-8, and `str` of anything JSON cannot hold (Decimal)."""
    return hashlib.sha256(canonical_json({"type": type_, "time": time.isoformat(),
                                          "data": data})).hexdigest()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """orjson writes the stdlib's canonical bytes five times faster (a fuzz test
    compares them); what orjson refuses (integers beyond 64 bits, non-string
    keys, deep nesting) the stdlib writes."""
    try:
        return orjson.dumps(document, default=str, option=_CANONICAL)
    except orjson.JSONEncodeError:
        return json.dumps(document, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, default=str).encode()


def identifier(value: object, name: str) -> str:
    # fullmatch: `$` alone would also accept a trailing newline ("job-1\n").
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise InvalidInput(f"{name} must be 1-128 chars of [A-Za-z0-9._:-]", "invalid_identifier")
    return value


def required(data: Mapping[str, Any], name: str) -> Any:
    if not isinstance(data, Mapping):
        # A list element of the wrong JSON type (`"milestones": [5]`) is bad input
        # with a code, never a TypeError that would stop the stream.
        raise InvalidInput(f"expected an object with {name}", "invalid_field")
    if name not in data:
        raise InvalidInput(f"missing field {name}", "missing_field")
    return data[name]


def ident(data: Mapping[str, Any], name: str) -> str:
    return identifier(required(data, name), name)


def amount(data: Mapping[str, Any], name: str) -> Money:
    return parse_money(required(data, name))


def split_amount(data: Mapping[str, Any], name: str) -> Money:
    """A dispute split part: zero is allowed (all to the other side)."""
    return parse_money(required(data, name), allow_zero=True)


def tax(data: Mapping[str, Any], currency: str, name: str = "tax") -> Money:
    """Optional consumption tax included in an amount: default 0."""
    return split_amount(data, name) if name in data else zero(currency)


def integer(data: Mapping[str, Any], name: str, low: int, high: int,
            default: int | None = None) -> int:
    value = data.get(name, default)
    if value is None:
        raise InvalidInput(f"missing field {name}", "missing_field")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}", "invalid_field")
    return value


def boolean(data: Mapping[str, Any], name: str, default: bool | None = None) -> bool:
    value = data.get(name, default)
    if value is None:
        raise InvalidInput(f"missing field {name}", "missing_field")
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", "invalid_field")
    return value


def text(data: Mapping[str, Any], name: str) -> str:
    value = required(data, name)
    if not isinstance(value, str) or len(value) > TEXT_CHARS_MAX:
        raise InvalidInput(f"{name} must be text of at most {TEXT_CHARS_MAX} chars",
                           "invalid_field")
    return value


def timestamp(data: Mapping[str, Any], name: str) -> datetime:
    value = required(data, name)
    try:
        return parse_instant(str(value))
    except NotAnInstant as exc:
        message = "must carry a timezone" if exc.missing_offset else "must be an ISO 8601 time"
        raise InvalidInput(f"{name} {message}", "time_format") from exc


def terms(data: Mapping[str, Any]) -> dict[str, Any] | None:
    value = data.get("terms")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("terms must be an object", "invalid_field")
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    if size > TERMS_BYTES_MAX:
        raise InvalidInput(f"terms are {size} bytes, at most {TERMS_BYTES_MAX}", "terms_too_large")
    return value
