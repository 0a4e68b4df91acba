"""The console's query parameters. A form sends its empty fields too, so each
pattern also admits "" (read as "not given"). Dates are days in Japan, as a
date picker gives them: "as of D" is the end of D in JST."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Query

from settlement.api.render import ApiError
from settlement.console.formatting import end_of_day, start_of_day

ID_CHARS = r"[A-Za-z0-9._:-]{1,128}"  # SPEC §3 identifiers
ID = rf"^({ID_CHARS})?$"
DAY = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"

CurrencyParam = Annotated[str | None, Query(pattern=r"^([A-Z]{3})?$")]
IdParam = Annotated[str | None, Query(pattern=ID)]
DayParam = Annotated[str | None, Query(pattern=DAY)]
StatusParam = Annotated[str | None, Query(pattern=r"^([a-z_]{1,32})?$")]
AccountAfter = Annotated[str | None, Query(pattern=r"^([A-Za-z0-9._:-]{1,300})?$")]
PositionAfter = Annotated[int, Query(ge=0, le=2**62)]
Prefix = Annotated[str | None, Query(pattern=r"^([a-z_]{1,40}:([a-z_]{1,40}:)?)?$")]


def given(value: str | None) -> str | None:
    return value or None


def day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"{name} is not a date", name) from exc


def end_of(name: str, value: str | None) -> datetime | None:
    found = day(name, value)
    return None if found is None else end_of_day(found)


def start_of(name: str, value: str | None) -> datetime | None:
    found = day(name, value)
    return None if found is None else start_of_day(found)


def pick(currency: str | None, currencies: list[str]) -> str | None:
    """The currency asked for, else the first the ledger holds (JPY before USD)."""
    return currency or (currencies[0] if currencies else None)
